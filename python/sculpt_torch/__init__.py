"""Sculpt's PyTorch worker: trains one run from the prepared data the trainer process writes (docs/torch-engine.md).

The TypeScript side owns the data, the batch plan, the learning rates and everything read off the results; this
package does the tensor work and reports it as `@sculpt {json}` lines (protocol.py).
"""

PROTOCOL_FORMAT = 1
