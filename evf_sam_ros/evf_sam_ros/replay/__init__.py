"""Rosbag replay testing: run the segmenter over recorded bags and report what it did.

Works without a ROS install: bags are read and written with the pure-Python ``rosbags``
package (rosbag2 sqlite3 and mcap, zstd-compressed or not, and ROS 1 .bag files).  Modules,
one job each:

* ``sample_bag`` ``evf-sam-make-sample-bag``: writes a sample bag from the tabletop scene
* ``archive``    what the user passed (directory, metadata.yaml, bare .db3 / .mcap, .bag)
  opened as one reader; metadata recreated when missing; old type names normalised
* ``salvage``    files cut off mid-write read up to the cut (``salvage_records``: the
  ROS 1 and mcap record walkers)
* ``bagio``      open/read/write bags, deserialize messages, the Segmentation type
* ``ros1bag``    ROS 1 .bag files read and written as ROS 2 CDR
* ``cdr``        CDR bytes of the messages the replay writes itself (sample and test bags)
* ``topics``     which topic is the image, depth, camera_info, command, ground truth
* ``frames``     images joined with their depth, intrinsics, prompt and ground truth
* ``offline``    frames straight through the node's pipeline and a local predictor
* ``live``       play a bag against a running evf_sam node (``live_control``: targets,
  prompt and /diagnostics; ``live_ros``: the replay's own rclpy node;
  ``live_outputs``: the node's recorded answers as frame results)
* ``results``    one frame's outcome, whichever mode made it
* ``scoring``    IoU, latency percentiles, 3D target statistics
* ``report``     report.json, frames.jsonl, the printed table, the run's verdict
  (``target_columns``: a target's per-frame numbers, compact)
* ``visuals``    overlay.mp4 and contact_sheet.png
* ``runner``     one pass over the frames tying the above together
* ``cli``        ``evf-sam-replay``
* ``fleet``      many bags in one command: bags found, jobs planned, --resume
* ``workers``    worker processes, one model each, replaying one bag at a time
* ``fleet_ray``  the bags as Ray tasks on a cluster
* ``fleet_report`` fleet_report.json and its table over the bags' reports

Importing this package imports nothing heavy (no torch, no rclpy).
"""
