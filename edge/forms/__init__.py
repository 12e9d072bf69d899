"""Numbers and scenes made for measuring the Pi's reader (make read-accuracy, the pair models' examples,
the camera's test video, the tests): over edge.pi's image tools, never copied to a Pi."""
