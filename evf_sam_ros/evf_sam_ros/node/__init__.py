"""The evf_sam_node lifecycle node and its ROS-free helpers (settings, worker, runtime)."""
