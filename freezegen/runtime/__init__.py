"""Code that runs inside a training process: imported by the traced estimator and inlined, as
source, into generated scripts. Its modules import torch and the standard library only;
names imports nothing, so lint (freezegen.arch.adapters) matches adapter targets by it too."""
