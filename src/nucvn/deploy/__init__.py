"""Deployment outside PyTorch: the trained network as an ONNX graph for ONNX Runtime (C++, Python).

* :mod:`nucvn.deploy.onnx_export`: a model directory -> ``model.onnx`` (raw ``uint8`` events in, one
  output per task head, dynamic batch axis) plus its JSON sidecar ``model.onnx.json``, the one
  writer and the one reader of that sidecar;
* :mod:`nucvn.deploy.quantize`: the int8 (static, QDQ) version of an exported graph, calibrated on a
  few hundred events;
* :mod:`nucvn.deploy.onnx_runtime`: an ONNX Runtime session that gives the task heads' outputs in
  the form the PyTorch model gives them, so :meth:`nucvn.tasks.base.Task.predict` and
  :func:`nucvn.inference.prediction_table` serve both backends unchanged.

Modules are imported by name (nothing here imports onnx or onnxruntime eagerly).
"""

from __future__ import annotations

__all__: list[str] = []
