"""What the instruments (:mod:`cnnzoo.analysis`) and the speed tools (:mod:`cnnzoo.speed`) share.

The two may not import each other, so the measuring they both do lives here,
below the networks, on torch and the standard library alone:

* ``flops``: FLOPs of a forward pass, in total and per module, and of a
  training step, with a convolution's backward counted right for
  depthwise (grouped) convolutions;
* ``timing``: several steps timed interleaved, the order reversing every
  round, so that machine noise falls on all alike; percentiles of the times;
* ``modes``: a network in evaluation mode for the length of a measurement,
  then back in the mode it was lent in;
* ``load``: how busy the machine was while something was timed.
"""
