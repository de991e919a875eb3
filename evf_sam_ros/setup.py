from glob import glob

from setuptools import find_packages, setup

package_name = 'evf_sam_ros'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    # ament index marker + package.xml, launch and config files (glob: empty dirs are fine).
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        ('share/' + package_name + '/config', glob('config/*.yaml') + glob('config/*.xml')),
        ('share/' + package_name + '/data', glob('data/*.png')),
    ],
    python_requires='>=3.10',
    # Ranges only: exact pins for CI live in requirements/constraints.txt.
    # rclpy and the message packages come from ROS (apt or the ros-jazzy-* wheels), not from here.
    install_requires=[
        'setuptools',
        'numpy>=1.24',
        'torch>=2.1',
        'torchvision>=0.16',
        'segment-anything>=1.0',
        'sam2>=1.1,<1.2',  # track mode calls sam2 internals: model/tracking/sam2_adapter.py
        'safetensors>=0.4',
        'sentencepiece>=0.1.99',
        'huggingface_hub>=0.20',
        'pillow>=9',
        'pyyaml>=6',
        'rosbags>=0.10.9',  # jazzy typestore (0.10.8), zstd mcap chunk compression (0.10.9)
        'backports.zstd>=1.0',  # salvage of truncated zstd chunks (rosbags needs it too)
        'lz4>=4.0',  # salvage of truncated lz4 chunks (rosbags needs it too)
        'imageio>=2.30',
        'imageio-ffmpeg>=0.4.9',
        'tqdm>=4.60',
    ],
    extras_require={
        'test': ['pytest'],
        # the onnxruntime backend and evf-sam-export (tensorrt: see the README)
        'onnx': ['onnx>=1.17', 'onnxruntime>=1.20', 'onnxscript>=0.5'],
        'ray': ['ray>=2.60'],  # evf-sam-replay --ray: 2.60 is the one tested
    },
    zip_safe=True,
    maintainer='evf_sam_ros maintainers',
    maintainer_email='maintainers@evf-sam-ros.invalid',
    description='ROS 2 node running EVF-SAM text-prompted segmentation on camera images.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'evf_sam_node = evf_sam_ros.node.main:main',
            'evf-sam-segment = evf_sam_ros.tools.segment:main',
            'evf-sam-tiny-checkpoint = evf_sam_ros.tools.tiny_checkpoint:main',
            'evf-sam-export = evf_sam_ros.tools.export_onnx:main',
            'evf-sam-replay = evf_sam_ros.replay.cli:main',
            'evf-sam-make-sample-bag = evf_sam_ros.replay.sample_bag:main',
        ],
    },
)
