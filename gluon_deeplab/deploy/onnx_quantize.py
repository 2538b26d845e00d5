"""INT8 ONNX graphs through ONNX Runtime's static quantization
(``onnxruntime.quantization.quantize_static``).

Every convolution of an exported float32 graph (``export --onnx``) gets
QuantizeLinear / DequantizeLinear pairs around it (the QDQ format), which ONNX Runtime's
CPU provider runs as int8 convolutions: weights int8 with one scale per output channel,
activations uint8 with one scale per tensor, found by calibration (the float32 graph runs
on calibration images; each tensor's range is its observed minimum and maximum). The
graph keeps its dynamic batch, height and width and its metadata, so
``deploy.onnx_predict`` runs it unchanged.

Only convolutions are quantized; resizes, pools and sums stay float32. (Quantized, the
MatMul of a Vortex box sum becomes a QLinearMatMul that fails at any size but the traced
one in ONNX Runtime 1.16.)

Weights keep within +-64, 7 of their 8 bits (``reduce_range``): on x86 CPUs without VNNI
(SSE4.1, AVX2, AVX-512 without VNNI), ONNX Runtime multiplies uint8 activations by int8
weights with VPMADDUBSW, which sums pairs of products in int16: 2 x 255 x 127 overflows
it, 2 x 255 x 64 does not. So one file computes the same on every x86 CPU (oneDNN
developer guide, "Nuances of int8 computations"; ONNX Runtime's quantization
documentation, "reduce_range").
"""
import logging

__all__ = ['quantize_onnx']


class _WithoutPreProcessingAdvice(logging.Filter):
    """Drops quantize_static's advice to run its pre-processing first, which cannot run
    here: its symbolic shape inference stops at our graph's dynamic sizes."""

    def filter(self, record):
        return 'pre-processing' not in record.getMessage()


def quantize_onnx(onnx_file, calibration_images, int8_file):
    """Write ``int8_file``: the QDQ int8 version of the float32 ONNX graph ``onnx_file``,
    calibrated on ``calibration_images``: (3, h, w) float32 numpy images, normalised as the
    graph's input, of one size or several (an (N, 3, h, w) array is N of them); each runs
    alone. Returns ``int8_file``. Raises ImportError when onnxruntime is not installed."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    import onnxruntime

    name = onnxruntime.InferenceSession(
        onnx_file, providers=['CPUExecutionProvider']).get_inputs()[0].name

    class Images(CalibrationDataReader):
        def __init__(self):
            self.batches = (image[None] for image in calibration_images)

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {name: batch}

    advice = _WithoutPreProcessingAdvice()
    logging.getLogger().addFilter(advice)
    try:
        quantize_static(onnx_file, int8_file, Images(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        per_channel=True, reduce_range=True, op_types_to_quantize=['Conv'])
    finally:
        logging.getLogger().removeFilter(advice)
    return int8_file
