"""evf_sam_ros: text-prompted EVF-SAM segmentation for ROS 2 (model, pipeline, node, replay)."""
