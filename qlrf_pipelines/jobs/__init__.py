"""Jobs: the main refresh job, plus asset jobs for discovery partitions and the warehouse."""
