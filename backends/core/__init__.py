"""The store contract and what every driver shares.

Records and the ``Store`` ABC (``base``), errors and their exit codes (``errors``), checkpoint ids
(``ids``), channel versions (``versions``), store URLs (``urls``), the raw msgpack codec
(``msgpack_raw``, ``msgpack_spans``) and the merge of checkpoints with their writes (``merge``).
Depends on nothing else of ckpt.
"""
