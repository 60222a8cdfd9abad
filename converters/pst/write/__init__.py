"""Writing PST files: `ndb` (blocks, B-trees, maps, header), `ltp` (heaps, BTrees-on-heap,
property and table contexts), `messaging` (store, folders, messages), `namemap` (named
properties), `mapi`, `parts` and `values` (MIME -> MAPI properties, pure), `sink`
(`pst:OUT.pst` as a target), `existing` (reading back a PST pstkit wrote), `check`
(structural checker)."""
