"""The machine now: CPU, memory, disks, network, NVIDIA GPUs, and which process is which run.

Owns the psutil snapshot of the host with its rolling five-minute history (``host``), the GPU
readings behind a small interface whose NVML implementation loads ``nvidia-ml-py`` only when
asked (``gpu``), the processes and their link to the runs whose files they hold open or whose
recorded working directory and command line they share (``processes``), and the idle-GPU flag of
a running run (``idle``). May import ``common``, entities and the store (the runs' files and
recorded commands come from a store query); never the TUI or Textual.
"""
