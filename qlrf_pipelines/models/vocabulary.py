"""Golden image tag names, statuses and lineage relations: plain constants with no dependencies,
so the CLI can build its option choices without importing pyarrow (records.py re-exports them)."""

# Golden images are recognised by these tags / labels / custom attributes on provider images.
# GCP label keys cannot contain ':' or '.', hence the dashed variants.
FAMILY_TAG = "qlrf:family"
VERSION_TAG = "qlrf:version"
STATUS_TAG = "qlrf:status"
GCP_VERSION_LABEL = "qlrf-version"
GCP_STATUS_LABEL = "qlrf-status"
GCP_FAMILY_LABEL = "qlrf-family"
IMAGE_STATUSES = ("testing", "production", "deprecated", "revoked")

# Lineage: an image names the image it was built from. The parent is a golden image id
# ("ubuntu-22.04-base@1.2.0"), a provider image id, or (GCP, whose label values cannot hold '@'
# or '.') a parent family + version pair; the relation is one of LINEAGE_RELATIONS.
PARENT_IMAGE_TAG = "qlrf:parent-image"
PARENT_FAMILY_TAG = "qlrf:parent-family"
PARENT_VERSION_TAG = "qlrf:parent-version"
PARENT_RELATION_TAG = "qlrf:parent-relation"
GCP_PARENT_FAMILY_LABEL = "qlrf-parent-family"
GCP_PARENT_VERSION_LABEL = "qlrf-parent-version"
GCP_PARENT_RELATION_LABEL = "qlrf-parent-relation"
LINEAGE_RELATIONS = ("derived_from", "patched_from", "rebuilt_from")
