"""Small helpers every capability shares, with no knowledge of runs, pipelines or the store.

Text from outside made inert (``sanitize``), numbers and times fitted to a width
(``formatting``), the HTTP client with deadlines and masked secrets (``httpclient``), opening
regular files only and walking folders (``regular_files``), bounded YAML (``safe_yaml``),
per-process temporary folders (``scratch``), the malloc arena cap (``malloc``), pyarrow told
that nothing is a pandas object without importing pandas (``no_pandas``), the cyclic
garbage collector held off during a bulk import (``collector``), and the binary
readers: TFRecord framing (``tfrecord``) and protobuf's wire format (``protowire``). May import
only the standard library and third-party packages: nothing else of mltop.
"""
