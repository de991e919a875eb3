"""Rosbag replay testing: run the segmenter over recorded bags and report what it did.

Works without a ROS install: bags are read and written with the pure-Python ``rosbags``
package (rosbag2 sqlite3 and mcap, zstd-compressed or not, and ROS 1 .bag files).  Modules,
one job each:

* ``scene``      synthetic tabletop renderer (colour, depth, ground truth), pure numpy
* ``sample_bag`` ``evf-sam-make-sample-bag``: writes a sample bag from the scene
* ``bagio``      open/read/write bags, deserialize messages, the Segmentation type
* ``ros1bag``    ROS 1 .bag files read and written as ROS 2 CDR
* ``cdr``        CDR bytes of the messages the replay writes itself (sample and test bags)
* ``topics``     which topic is the image, depth, camera_info, command, ground truth
* ``frames``     images joined with their depth, intrinsics, prompt and ground truth
* ``offline``    frames straight through an EvfSamPredictor
* ``live``       play a bag against a running evf_sam node and record its outputs
* ``live_ros``   the replay's own rclpy node used by ``live``
* ``results``    one frame's outcome, whichever mode made it
* ``scoring``    IoU, latency percentiles, 3D target statistics
* ``report``     report.json and the printed table
* ``visuals``    overlay.mp4 and contact_sheet.png
* ``pipeline``   one pass over the frames tying the above together
* ``cli``        ``evf-sam-replay``
* ``fleet``      many bags in one command: bags found, jobs planned, --resume
* ``workers``    worker processes, one model each, replaying one bag at a time
* ``fleet_ray``  the bags as Ray tasks on a cluster
* ``fleet_report`` fleet_report.json and its table over the bags' reports

Importing this package imports nothing heavy (no torch, no rclpy).
"""
