"""The golden image registry: lineage between images, promotions through their lifecycle, and the
questions asked of both (descendants, cycles, blast radius). Pure logic plus a read of the lake;
no Dagster and no warehouse here, so the CLI can decide while a warehouse build is running."""
