"""The Raspberry Pi runtime: numpy, Pillow and a TFLite interpreter, no TensorFlow (requirements.txt).
Commands: classify, read, camera, serve, bench; over classifier.py, image.py and reader.py
(which reads a number over ink.py, pieces.py and touching.py, or rules.py without the pair models)."""
