"""Every topic name of the package, in one table.

The node's topics are relative (remapped and namespaced by the ROS arguments); the bag tools'
defaults are the absolute topics of a typical camera driver, as ``smmcl-make-bag`` writes them.
Pure strings: importing this module imports nothing else.
"""

NODE_NAME = 'smmcl_segmentation'

# ---- the node (relative names) ------------------------------------------------------------
RGB = 'rgb/image'
AUX = 'aux/image'
RGB_INFO = 'rgb/camera_info'
AUX_INFO = 'aux/camera_info'  # intrinsics of aux/image: HHA encoding, segmentation/points
MASK = 'segmentation/mask'
COLOR = 'segmentation/color'
OVERLAY = 'segmentation/overlay'
CONFIDENCE = 'segmentation/confidence'
POINTS = 'segmentation/points'  # semantic PointCloud2, depth / HHA checkpoints
CAMERA_INFO = 'segmentation/camera_info'
LABELS = 'segmentation/labels'
LABEL_INFO = 'segmentation/label_info'
DIAGNOSTICS = '/diagnostics'
MODEL = 'model'  # not a topic: the source name of inference problems in diagnostics

# Image outputs by pipeline output name (smmcl_ros.pipeline.outputs.OUTPUTS).
IMAGE_OUTPUTS = {'mask': MASK, 'color': COLOR, 'overlay': OVERLAY, 'confidence': CONFIDENCE}

# ---- bags and tools (absolute names) --------------------------------------------------------
CAMERA_RGB = '/camera/color/image_raw'
CAMERA_AUX = '/camera/aux/image_raw'
CAMERA_RGB_INFO = '/camera/color/camera_info'  # the camera the aux image is registered to
CAMERA_DEPTH_INFO = '/camera/depth/camera_info'  # an unregistered depth camera's intrinsics
BAG_LABEL = '/segmentation/label'
BAG_MASK = '/' + MASK
BAG_COLOR = '/' + COLOR
BAG_POINTS = '/' + POINTS
DEMO_RGB = '/demo/rgb'
DEMO_AUX = '/demo/aux'
