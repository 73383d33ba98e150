"""Camera sources, frame ring, ONNX runtime, detector, embedder, gallery, processing loop."""
