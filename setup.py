from setuptools import find_packages, setup

# MXNet 1.9.1 imports only with numpy < 1.24; gluoncv 0.10.5 (tests) needs the pins below.
PINNED = ['numpy>=1.20,<1.24', 'opencv-python<4.9', 'matplotlib<3.9', 'scipy<1.12']

setup(
    name='gluon_deeplab',
    version='0.1.0',
    description='DeepLabV3 semantic segmentation with ASPP or Vortex Pooling in MXNet Gluon',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['gluon_deeplab', 'gluon_deeplab.*']),
    python_requires='>=3.8',
    install_requires=PINNED + ['Pillow', 'tqdm'],
    extras_require={
        # The MXNet wheel is chosen by the user: CPU, or CUDA 11.2 (needs the CUDA 11
        # runtime and cuDNN 8 installed; the wheel bundles neither).
        'cpu': ['mxnet==1.9.1'],
        'cu112': ['mxnet-cu112==1.9.1'],
        # onnx<1.16: MXNet 1.9.1's ONNX exporter fails with newer ones. onnxruntime is not
        # listed: its wheels for Python 3.11 declare numpy>=1.24.2 (scripts/test.sh).
        'test': ['pytest', 'gluoncv==0.10.5.post0', 'pandas<2.2', 'onnx<1.16'],
    },
    entry_points={'console_scripts': [
        'gluon-deeplab-train=gluon_deeplab.train:main',
        'gluon-deeplab-eval=gluon_deeplab.evaluate:main',
        'gluon-deeplab-predict=gluon_deeplab.predict:main',
        'gluon-deeplab-export=gluon_deeplab.export:main',
        'gluon-deeplab-launch=gluon_deeplab.launch:main',
        'gluon-deeplab-onnx-predict=gluon_deeplab.deploy.onnx_predict:main',
    ]},
    license='Apache-2.0',
)
