"""Portable graphs of the model: ONNX export, onnxruntime and TensorRT runtimes.

export.py writes one ONNX graph per model part (a registry of graph builders: graphs.py holds
the image-mode ones) and a manifest; cache.py keeps exported graphs and engines in directories
keyed by hashes; ort_runtime.py and trt_runtime.py run them; backend.py puts a runtime behind
the predictor's encode / text / decode calls.
"""
