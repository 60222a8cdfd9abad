/* Optional C twins of the PST writer's LTP builders (converters/pst/write/ltp.py, whose
 * Python code is the reference; tests/pst/test_write_speedups.py compares the two).
 * A heap-on-node is laid out here as ltp.Heap lays it out: allocations go to the last
 * block while they fit, every block but the last is full with its page map at the end,
 * fill levels in the first block's header and in the bitmap blocks (MS-PST 2.3.1).
 *
 * pc_build(props, next_sub, pid) -> (blocks, larges, slot) | None
 *   ltp._property_context_py: the property context of `props` ((id, type, bytes)
 *   tuples), sorted by id (stable). Values over a heap allocation are not in the heap:
 *   they are `larges`, in order, and the caller gives them the sub-node NIDs this used,
 *   ((next_sub + j) << 5) | 0x1F. `slot` is (block, offset) of property `pid`'s inline
 *   value (None: not inline, not there, or a BTH of more than one level). None for input
 *   the twin handles otherwise (values that are no bytes, ids out of range): the caller
 *   runs the twin.
 *
 * tc_build(plan, size, rows, next_sub, ncols, rgib, cols) -> (blocks, larges, matrix)
 *   ltp.table_context_py for the layout ltp._layout gave (`plan`: per column (tag, ib,
 *   cb, fixed size?, CEB byte, CEB mask); `cols` the TCOLDESCs; `rgib` TCINFO's four
 *   ends) and `rows`, an iterable of (row id, cells) taken once, in order. `larges` as
 *   above; `matrix` the row matrix's blocks when it is a sub-node (NID next_sub +
 *   len(larges)), else None. Errors are the twin's: ValueError for a property given
 *   twice, a heap item too large or rows wider than a block, struct.error for values out
 *   of range.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

#include "_pstspeed.h"

#define BLOCK_MAX 8176
#define HEAP_ITEM_MAX 3580
#define MAX_ALLOCS 2047
#define NID_TYPE_LTP 0x1F

typedef struct {
    PyObject **item; /* owned bytes, in allocation order */
    Py_ssize_t n, cap;
    Py_ssize_t *first; /* per block: index of its first item */
    Py_ssize_t *end;   /* per block: bytes used, header included */
    Py_ssize_t nb, bcap;
} heap_t;

static Py_ssize_t
header_size(Py_ssize_t index)
{
    if (index == 0)
        return 12;
    return index >= 8 && (index - 8) % 128 == 0 ? 66 : 2;
}

static int
fill_level(Py_ssize_t free)
{
    static const int bound[] = {3584, 2560, 2048, 1792, 1536, 1280, 1024, 768, 512,
                                256,  128,  64,   32,   16,   8};
    for (int level = 0; level < 15; level++)
        if (free >= bound[level])
            return level;
    return 0xF;
}

static int
heap_init(heap_t *h)
{
    memset(h, 0, sizeof *h);
    h->bcap = 4;
    h->first = PyMem_Malloc(h->bcap * sizeof(Py_ssize_t));
    h->end = PyMem_Malloc(h->bcap * sizeof(Py_ssize_t));
    if (h->first == NULL || h->end == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    h->nb = 1;
    h->first[0] = 0;
    h->end[0] = header_size(0);
    return 0;
}

static void
heap_free(heap_t *h)
{
    for (Py_ssize_t i = 0; i < h->n; i++)
        Py_DECREF(h->item[i]);
    PyMem_Free(h->item);
    PyMem_Free(h->first);
    PyMem_Free(h->end);
}

static int
struct_error(const char *what)
{
    PyObject *mod = PyImport_ImportModule("struct");
    if (mod == NULL)
        return -1;
    PyObject *err = PyObject_GetAttrString(mod, "error");
    Py_DECREF(mod);
    if (err == NULL)
        return -1;
    PyErr_SetString(err, what);
    Py_DECREF(err);
    return -1;
}

/* Heap.add: allocate `item` (a bytes object; the reference is stolen); its HID, or -1. */
static long long
heap_add(heap_t *h, PyObject *item)
{
    if (item == NULL)
        return -1;
    Py_ssize_t size = PyBytes_GET_SIZE(item);
    if (size > HEAP_ITEM_MAX) {
        Py_DECREF(item);
        PyErr_SetString(PyExc_ValueError, "heap item too large");
        return -1;
    }
    Py_ssize_t index = h->nb - 1, count = h->n - h->first[index] + 1;
    Py_ssize_t end = h->end[index] + size;
    if (count > MAX_ALLOCS || end + (end & 1) + 4 + 2 * (count + 1) > BLOCK_MAX) {
        if (h->nb == h->bcap) {
            Py_ssize_t cap = h->bcap * 2;
            Py_ssize_t *f = PyMem_Realloc(h->first, cap * sizeof(Py_ssize_t));
            if (f != NULL)
                h->first = f;
            Py_ssize_t *e = PyMem_Realloc(h->end, cap * sizeof(Py_ssize_t));
            if (e != NULL)
                h->end = e;
            if (f == NULL || e == NULL) {
                Py_DECREF(item);
                PyErr_NoMemory();
                return -1;
            }
            h->bcap = cap;
        }
        index = h->nb++;
        h->first[index] = h->n;
        count = 1;
        end = header_size(index) + size;
    }
    if (h->n == h->cap) {
        Py_ssize_t cap = h->cap ? h->cap * 2 : 32;
        PyObject **grown = PyMem_Realloc(h->item, cap * sizeof(PyObject *));
        if (grown == NULL) {
            Py_DECREF(item);
            PyErr_NoMemory();
            return -1;
        }
        h->item = grown;
        h->cap = cap;
    }
    h->item[h->n++] = item;
    h->end[index] = end;
    return ((long long)index << 16) | ((long long)count << 5);
}

static long long
heap_add_buf(heap_t *h, const char *data, Py_ssize_t size)
{
    return heap_add(h, PyBytes_FromStringAndSize(data, size));
}

/* Heap.where: (block index, offset) of an allocation */
static void
heap_where(heap_t *h, long long hid, Py_ssize_t *index, Py_ssize_t *offset)
{
    Py_ssize_t b = (Py_ssize_t)(hid >> 16), k = (Py_ssize_t)((hid >> 5) & 0x7FF);
    Py_ssize_t at = header_size(b);
    for (Py_ssize_t i = h->first[b]; i < h->first[b] + k - 1; i++)
        at += PyBytes_GET_SIZE(h->item[i]);
    *index = b;
    *offset = at;
}

static void
put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void
put32(unsigned char *p, unsigned long long v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* Heap.build: the data blocks, fill levels set */
static PyObject *
heap_build(heap_t *h, int client_sig, long long root)
{
    if (root > 0xFFFFFFFFLL) {
        struct_error("'I' format requires 0 <= number <= 4294967295");
        return NULL;
    }
    PyObject *out = PyList_New(h->nb);
    int *levels = PyMem_Malloc(h->nb * sizeof(int));
    if (out == NULL || levels == NULL) {
        Py_XDECREF(out);
        PyMem_Free(levels);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < h->nb; i++) {
        int full = i < h->nb - 1;
        Py_ssize_t a = h->first[i], b = i + 1 < h->nb ? h->first[i + 1] : h->n;
        Py_ssize_t cnt = b - a, last = h->end[i];
        Py_ssize_t map = 4 + 2 * (cnt + 1);
        Py_ssize_t ib_map = full ? BLOCK_MAX - map : last + (last & 1);
        PyObject *block = PyBytes_FromStringAndSize(NULL, ib_map + map);
        if (block == NULL) {
            Py_DECREF(out);
            PyMem_Free(levels);
            return NULL;
        }
        unsigned char *p = (unsigned char *)PyBytes_AS_STRING(block);
        memset(p, 0, ib_map + map);
        put16(p, (unsigned)ib_map);
        if (i == 0) {
            p[2] = 0xEC;
            p[3] = (unsigned char)client_sig;
            put32(p + 4, (unsigned long long)root);
        }
        Py_ssize_t at = header_size(i);
        unsigned char *m = p + ib_map;
        put16(m, (unsigned)cnt);
        put16(m + 4, (unsigned)at);
        for (Py_ssize_t k = a; k < b; k++) {
            Py_ssize_t len = PyBytes_GET_SIZE(h->item[k]);
            memcpy(p + at, PyBytes_AS_STRING(h->item[k]), len);
            at += len;
            put16(m + 6 + 2 * (k - a), (unsigned)at);
        }
        levels[i] = fill_level(full ? ib_map - last : BLOCK_MAX - (ib_map + map));
        PyList_SET_ITEM(out, i, block);
    }
    /* fill levels: HNHDR's 8 (bytes 8..12 of block 0), HNBITMAPHDR's 128 (bytes 2..66) */
    unsigned char *p0 = (unsigned char *)PyBytes_AS_STRING(PyList_GET_ITEM(out, 0));
    for (Py_ssize_t i = 0; i < 8 && i < h->nb; i++)
        p0[8 + i / 2] |= (unsigned char)(levels[i] << (4 * (i & 1)));
    for (Py_ssize_t at = 8; at < h->nb; at += 128) {
        unsigned char *pb = (unsigned char *)PyBytes_AS_STRING(PyList_GET_ITEM(out, at));
        for (Py_ssize_t i = at; i < at + 128 && i < h->nb; i++)
            pb[2 + (i - at) / 2] |= (unsigned char)(levels[i] << (4 * ((i - at) & 1)));
    }
    PyMem_Free(levels);
    return out;
}

/* ltp._bth over `n` records of `ks + ds` bytes, sorted: the header's HID (or -1), and in
 * *leaf the only leaf's HID (-1 when it has more than one level or no records). */
static long long
heap_bth(heap_t *h, int ks, int ds, const unsigned char *records, Py_ssize_t n,
         long long *leaf)
{
    Py_ssize_t rs = ks + ds, per = HEAP_ITEM_MAX / rs;
    int level = 0;
    long long root = 0;
    unsigned char *owned = NULL;
    const unsigned char *rows = records;
    *leaf = -1;
    while (n > 0) {
        Py_ssize_t chunks = (n + per - 1) / per;
        unsigned char *next = chunks > 1 ? PyMem_Malloc(chunks * (ks + 4)) : NULL;
        if (chunks > 1 && next == NULL) {
            PyMem_Free(owned);
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t c = 0; c < chunks; c++) {
            Py_ssize_t k = c * per, m = n - k < per ? n - k : per;
            long long hid = heap_add_buf(h, (const char *)rows + k * rs, m * rs);
            if (hid < 0) {
                PyMem_Free(next);
                PyMem_Free(owned);
                return -1;
            }
            if (chunks == 1)
                root = hid;
            else {
                memcpy(next + c * (ks + 4), rows + k * rs, ks);
                put32(next + c * (ks + 4) + ks, (unsigned long long)hid);
            }
        }
        if (chunks == 1) {
            if (level == 0)
                *leaf = root;
            break;
        }
        PyMem_Free(owned);
        owned = next;
        rows = next;
        n = chunks;
        rs = ks + 4;
        per = HEAP_ITEM_MAX / rs;
        level++;
    }
    PyMem_Free(owned);
    unsigned char head[8] = {0xB5, (unsigned char)ks, (unsigned char)ds, (unsigned char)level};
    put32(head + 4, (unsigned long long)root);
    return heap_add_buf(h, (const char *)head, 8);
}

/* --- property contexts ------------------------------------------------------------ */

typedef struct {
    unsigned long pid, ptype;
    Py_ssize_t order;
    PyObject *raw; /* borrowed */
} prop_t;

static int
by_pid(const void *a, const void *b)
{
    const prop_t *x = a, *y = b;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int
inline_type(unsigned long t)
{
    return t == 0x0002 || t == 0x0003 || t == 0x0004 || t == 0x000A || t == 0x000B;
}

/* (id, type, raw) with ids and types of 16 bits and raw bytes; 0 when not (or an error) */
static int
read_prop(PyObject *t, unsigned long *pid, unsigned long *ptype, PyObject **raw)
{
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 3)
        return 0;
    PyObject *a = PyTuple_GET_ITEM(t, 0), *b = PyTuple_GET_ITEM(t, 1);
    *raw = PyTuple_GET_ITEM(t, 2);
    if (!PyLong_CheckExact(a) || !PyLong_CheckExact(b) || !PyBytes_CheckExact(*raw))
        return 0;
    *pid = PyLong_AsUnsignedLong(a);
    *ptype = PyLong_AsUnsignedLong(b);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return *pid <= 0xFFFF && *ptype <= 0xFFFF;
}

static PyObject *
pc_fail(heap_t *h, prop_t *props, unsigned char *recs, PyObject *larges, PyObject *seq,
        int fallback)
{
    heap_free(h);
    PyMem_Free(props);
    PyMem_Free(recs);
    Py_XDECREF(larges);
    Py_XDECREF(seq);
    if (fallback && !PyErr_Occurred())
        Py_RETURN_NONE;
    return NULL;
}

PyObject *
pst_pc_build(PyObject *self, PyObject *args)
{
    PyObject *arg, *seq, *larges = NULL;
    unsigned long long next_sub;
    long want;
    heap_t h;
    if (!PyArg_ParseTuple(args, "OKl", &arg, &next_sub, &want))
        return NULL;
    if ((seq = PySequence_Fast(arg, "props must be a sequence")) == NULL)
        return NULL;
    if (heap_init(&h) < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    prop_t *props = PyMem_Malloc((n ? n : 1) * sizeof(prop_t));
    unsigned char *recs = PyMem_Malloc((n ? n : 1) * 8);
    if (props == NULL || recs == NULL) {
        PyErr_NoMemory();
        return pc_fail(&h, props, recs, NULL, seq, 0);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        prop_t *p = &props[i];
        if (!read_prop(PySequence_Fast_GET_ITEM(seq, i), &p->pid, &p->ptype, &p->raw))
            return pc_fail(&h, props, recs, NULL, seq, 1);
        p->order = i;
    }
    qsort(props, (size_t)n, sizeof(prop_t), by_pid);
    if ((larges = PyList_New(0)) == NULL)
        return pc_fail(&h, props, recs, NULL, seq, 0);
    Py_ssize_t at = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        prop_t *p = &props[i];
        Py_ssize_t len = PyBytes_GET_SIZE(p->raw);
        const unsigned char *raw = (const unsigned char *)PyBytes_AS_STRING(p->raw);
        unsigned long long hnid = 0;
        if (inline_type(p->ptype)) {
            for (Py_ssize_t k = 0; k < 4 && k < len; k++)
                hnid |= (unsigned long long)raw[k] << (8 * k);
            if ((long)p->pid == want)
                at = i;
        }
        else if (len <= HEAP_ITEM_MAX) {
            Py_INCREF(p->raw);
            long long hid = heap_add(&h, p->raw);
            if (hid < 0)
                return pc_fail(&h, props, recs, larges, seq, 0);
            hnid = (unsigned long long)hid;
        }
        else {
            hnid = ((next_sub + (unsigned long long)PyList_GET_SIZE(larges)) << 5) | NID_TYPE_LTP;
            if (PyList_Append(larges, p->raw) < 0)
                return pc_fail(&h, props, recs, larges, seq, 0);
        }
        if (hnid > 0xFFFFFFFFULL)
            return pc_fail(&h, props, recs, larges, seq, 1); /* the twin's struct.error */
        put16(recs + 8 * i, (unsigned)p->pid);
        put16(recs + 8 * i + 2, (unsigned)p->ptype);
        put32(recs + 8 * i + 4, hnid);
    }
    for (Py_ssize_t i = 1; i < n; i++)
        if (props[i].pid == props[i - 1].pid) {
            PyErr_SetString(PyExc_ValueError, "a property is given twice");
            return pc_fail(&h, props, recs, larges, seq, 0);
        }
    long long leaf;
    long long root = heap_bth(&h, 2, 6, recs, n, &leaf);
    if (root < 0)
        return pc_fail(&h, props, recs, larges, seq, 0);
    PyObject *blocks = heap_build(&h, 0xBC, root);
    if (blocks == NULL)
        return pc_fail(&h, props, recs, larges, seq, 0);
    PyObject *slot;
    if (at >= 0 && leaf >= 0) {
        Py_ssize_t index, offset;
        heap_where(&h, leaf, &index, &offset);
        slot = Py_BuildValue("(nn)", index, offset + at * 8 + 4);
    }
    else
        slot = Py_NewRef(Py_None);
    if (slot == NULL) {
        Py_DECREF(blocks);
        return pc_fail(&h, props, recs, larges, seq, 0);
    }
    PyObject *out = Py_BuildValue("(NNN)", blocks, larges, slot); /* N: taken either way */
    if (out == NULL) {
        larges = NULL;
        return pc_fail(&h, props, recs, larges, seq, 0);
    }
    larges = NULL;
    heap_free(&h);
    PyMem_Free(props);
    PyMem_Free(recs);
    Py_DECREF(seq);
    return out;
}

/* --- table contexts --------------------------------------------------------------- */

typedef struct {
    unsigned long long tag;
    Py_ssize_t ib, cb, ceb;
    int fixed;
    unsigned char bit;
} col_t;

typedef struct {
    unsigned long long rid, index;
} rowid_t;

static int
by_rowid(const void *a, const void *b)
{
    const rowid_t *x = a, *y = b;
    if (x->rid != y->rid)
        return x->rid < y->rid ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int
read_plan(PyObject *plan, col_t **cols, Py_ssize_t *n, Py_ssize_t size)
{
    PyObject *seq = PySequence_Fast(plan, "plan must be a sequence");
    if (seq == NULL)
        return -1;
    *n = PySequence_Fast_GET_SIZE(seq);
    *cols = PyMem_Malloc((*n ? *n : 1) * sizeof(col_t));
    if (*cols == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < *n; i++) {
        col_t *c = &(*cols)[i];
        int fixed, bit;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "Knnpni", &c->tag, &c->ib,
                              &c->cb, &fixed, &c->ceb, &bit)) {
            Py_DECREF(seq);
            return -1;
        }
        c->fixed = fixed;
        c->bit = (unsigned char)bit;
        if (c->ib < 0 || c->cb < 0 || c->ib + c->cb > size || c->ceb < 0 || c->ceb >= size) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "bad table layout");
            return -1;
        }
    }
    Py_DECREF(seq);
    return 0;
}

/* a cell value as bytes (a new reference): bytes as they are, other buffers copied */
static PyObject *
as_bytes(PyObject *raw)
{
    if (PyBytes_CheckExact(raw))
        return Py_NewRef(raw);
    return PyBytes_FromObject(raw);
}

/* the last cell of `cells` with this tag ((id << 16) | type), as a dict of them keeps it;
 * a borrowed reference, or NULL (no error) when there is none */
static PyObject *
cell(PyObject *cells, unsigned long long tag, int *err)
{
    for (Py_ssize_t i = PySequence_Fast_GET_SIZE(cells) - 1; i >= 0; i--) {
        PyObject *c = PySequence_Fast_GET_ITEM(cells, i);
        PyObject **f = PyTuple_Check(c) || PyList_Check(c) ? PySequence_Fast_ITEMS(c) : NULL;
        if (f == NULL || PySequence_Fast_GET_SIZE(c) != 3) {
            PyErr_SetString(PyExc_ValueError, "a cell is no (id, type, value)");
            *err = 1;
            return NULL;
        }
        unsigned long long pid = PyLong_AsUnsignedLongLong(f[0]);
        unsigned long long ptype = PyLong_AsUnsignedLongLong(f[1]);
        if (PyErr_Occurred()) {
            *err = 1;
            return NULL;
        }
        if (((pid << 16) | ptype) == tag)
            return f[2];
    }
    return NULL;
}

/* one row of the matrix into `row` (zeroed, `size` bytes); -1 on an error */
static int
tc_row(heap_t *h, col_t *cols, Py_ssize_t ncols, PyObject *cells, unsigned long long rid,
       unsigned long long version, unsigned char *row, PyObject *larges,
       unsigned long long next_sub)
{
    for (Py_ssize_t i = 0; i < ncols; i++) {
        col_t *c = &cols[i];
        unsigned char num[4];
        const unsigned char *data;
        Py_ssize_t len;
        PyObject *raw = NULL;
        if (c->tag == 0x67F20003ULL || c->tag == 0x67F30003ULL) {
            put32(num, c->tag == 0x67F20003ULL ? rid : version);
            data = num;
            len = 4;
        }
        else {
            int err = 0;
            PyObject *found = cell(cells, c->tag, &err);
            if (err)
                return -1;
            if (found == NULL)
                continue;
            if ((raw = as_bytes(found)) == NULL)
                return -1;
            data = (const unsigned char *)PyBytes_AS_STRING(raw);
            len = PyBytes_GET_SIZE(raw);
        }
        if (c->fixed) {
            memcpy(row + c->ib, data, (size_t)(len < c->cb ? len : c->cb));
            memset(row + c->ib + (len < c->cb ? len : c->cb), 0,
                   (size_t)(c->cb - (len < c->cb ? len : c->cb)));
        }
        else {
            unsigned long long hnid;
            if (raw == NULL && (raw = PyBytes_FromStringAndSize((const char *)data, len)) == NULL)
                return -1;
            if (len <= HEAP_ITEM_MAX) {
                long long hid = heap_add(h, raw);
                raw = NULL; /* stolen */
                if (hid < 0)
                    return -1;
                hnid = (unsigned long long)hid;
            }
            else {
                hnid = ((next_sub + (unsigned long long)PyList_GET_SIZE(larges)) << 5) |
                       NID_TYPE_LTP;
                if (PyList_Append(larges, raw) < 0) {
                    Py_DECREF(raw);
                    return -1;
                }
            }
            if (hnid > 0xFFFFFFFFULL) {
                Py_XDECREF(raw);
                return struct_error("'I' format requires 0 <= number <= 4294967295");
            }
            put32(row + c->ib, hnid);
        }
        Py_XDECREF(raw);
        row[c->ceb] |= c->bit;
    }
    return 0;
}

typedef struct {
    unsigned char *data;
    Py_ssize_t len, cap;
} buf_t;

static int
buf_grow(buf_t *b, Py_ssize_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    unsigned char *d = PyMem_Realloc(b->data, cap);
    if (d == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

/* a row's id, checked as struct.pack("<I") checks it; -1 on an error */
static int
row_id(PyObject *obj, unsigned long long *rid)
{
    *rid = PyLong_AsUnsignedLongLong(obj);
    if (PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return -1;
        PyErr_Clear();
    }
    else if (*rid <= 0xFFFFFFFFULL)
        return 0;
    return struct_error("'I' format requires 0 <= number <= 4294967295");
}

/* one (row id, cells) of the rows: the row into the matrix, its id into ids */
static int
tc_one(heap_t *h, col_t *cols, Py_ssize_t ncols, Py_ssize_t size, PyObject *row,
       unsigned long long version, buf_t *matrix, buf_t *ids, PyObject *larges,
       unsigned long long next_sub)
{
    if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 2) {
        PyErr_SetString(PyExc_ValueError, "a row is no (row id, cells)");
        return -1;
    }
    unsigned long long rid;
    if (row_id(PyTuple_GET_ITEM(row, 0), &rid) < 0 || version > 0xFFFFFFFFULL)
        return PyErr_Occurred() ? -1 : struct_error("too many rows");
    PyObject *cells = PySequence_Fast(PyTuple_GET_ITEM(row, 1), "cells must be a sequence");
    if (cells == NULL || buf_grow(matrix, size) < 0 || buf_grow(ids, sizeof(rowid_t)) < 0) {
        Py_XDECREF(cells);
        return -1;
    }
    unsigned char *r = matrix->data + matrix->len;
    memset(r, 0, (size_t)size);
    int bad = tc_row(h, cols, ncols, cells, rid, version, r, larges, next_sub);
    Py_DECREF(cells);
    if (bad)
        return -1;
    matrix->len += size;
    rowid_t *id = (rowid_t *)(ids->data + ids->len);
    id->rid = rid;
    id->index = version;
    ids->len += sizeof(rowid_t);
    return 0;
}

/* the rows, their ids and the matrix; -1 on an error */
static int
tc_rows_in(heap_t *h, col_t *cols, Py_ssize_t ncols, Py_ssize_t size, PyObject *rows,
           buf_t *matrix, buf_t *ids, PyObject *larges, unsigned long long next_sub)
{
    PyObject *it = PyObject_GetIter(rows), *row;
    if (it == NULL)
        return -1;
    for (unsigned long long version = 0; (row = PyIter_Next(it)) != NULL; version++) {
        int bad = tc_one(h, cols, ncols, size, row, version, matrix, ids, larges, next_sub);
        Py_DECREF(row);
        if (bad) {
            Py_DECREF(it);
            return -1;
        }
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

PyObject *
pst_tc_build(PyObject *self, PyObject *args)
{
    PyObject *plan, *rows, *colbytes, *larges = NULL, *mblocks = NULL, *blocks = NULL;
    Py_ssize_t size, ncols_info;
    unsigned long long next_sub;
    unsigned g0, g1, g2, g3;
    if (!PyArg_ParseTuple(args, "OnOKn(IIII)S", &plan, &size, &rows, &next_sub, &ncols_info,
                          &g0, &g1, &g2, &g3, &colbytes))
        return NULL;
    if (size <= 0) {
        PyErr_SetString(PyExc_ValueError, "bad row size");
        return NULL;
    }
    col_t *cols = NULL;
    Py_ssize_t ncols;
    heap_t h;
    buf_t matrix = {0}, ids = {0}, recs = {0};
    if (read_plan(plan, &cols, &ncols, size) < 0)
        return NULL;
    if (heap_init(&h) < 0 || (larges = PyList_New(0)) == NULL)
        goto fail;
    if (tc_rows_in(&h, cols, ncols, size, rows, &matrix, &ids, larges, next_sub) < 0)
        goto fail;
    Py_ssize_t nrows = ids.len / (Py_ssize_t)sizeof(rowid_t);
    qsort(ids.data, (size_t)nrows, sizeof(rowid_t), by_rowid);
    if (buf_grow(&recs, 8 * nrows + 1) < 0)
        goto fail;
    for (Py_ssize_t i = 0; i < nrows; i++) {
        rowid_t *id = (rowid_t *)ids.data + i;
        put32(recs.data + 8 * i, id->rid);
        put32(recs.data + 8 * i + 4, id->index);
    }
    long long leaf, index = heap_bth(&h, 4, 4, recs.data, nrows, &leaf);
    if (index < 0)
        goto fail;
    unsigned long long hnid = 0;
    if (matrix.len > 0 && matrix.len <= HEAP_ITEM_MAX) {
        long long hid = heap_add_buf(&h, (const char *)matrix.data, matrix.len);
        if (hid < 0)
            goto fail;
        hnid = (unsigned long long)hid;
    }
    else if (matrix.len > 0) { /* rows never span blocks: each block holds whole rows */
        Py_ssize_t per = BLOCK_MAX / size;
        if (per == 0) {
            PyErr_SetString(PyExc_ValueError, "range() arg 3 must not be zero");
            goto fail;
        }
        Py_ssize_t nb = (nrows + per - 1) / per;
        if ((mblocks = PyList_New(nb)) == NULL)
            goto fail;
        for (Py_ssize_t b = 0; b < nb; b++) {
            Py_ssize_t m = nrows - b * per < per ? nrows - b * per : per;
            Py_ssize_t len = b < nb - 1 ? BLOCK_MAX : m * size;
            PyObject *blk = PyBytes_FromStringAndSize(NULL, len);
            if (blk == NULL)
                goto fail;
            char *p = PyBytes_AS_STRING(blk);
            memcpy(p, matrix.data + b * per * size, (size_t)(m * size));
            memset(p + m * size, 0, (size_t)(len - m * size));
            PyList_SET_ITEM(mblocks, b, blk);
        }
        hnid = ((next_sub + (unsigned long long)PyList_GET_SIZE(larges)) << 5) | NID_TYPE_LTP;
    }
    if (hnid > 0xFFFFFFFFULL || (unsigned long long)index > 0xFFFFFFFFULL ||
        ncols_info < 0 || ncols_info > 255) {
        struct_error("argument out of range");
        goto fail;
    }
    Py_ssize_t clen = PyBytes_GET_SIZE(colbytes);
    PyObject *info = PyBytes_FromStringAndSize(NULL, 22 + clen);
    if (info == NULL)
        goto fail;
    unsigned char *p = (unsigned char *)PyBytes_AS_STRING(info);
    p[0] = 0x7C;
    p[1] = (unsigned char)ncols_info;
    put16(p + 2, g0);
    put16(p + 4, g1);
    put16(p + 6, g2);
    put16(p + 8, g3);
    put32(p + 10, (unsigned long long)index);
    put32(p + 14, hnid);
    put32(p + 18, 0);
    memcpy(p + 22, PyBytes_AS_STRING(colbytes), (size_t)clen);
    long long info_hid = heap_add(&h, info);
    if (info_hid < 0 || (blocks = heap_build(&h, 0x7C, info_hid)) == NULL)
        goto fail;
    PyObject *out = Py_BuildValue("(NNO)", blocks, larges, mblocks ? mblocks : Py_None);
    if (out == NULL) {
        blocks = larges = NULL; /* N: taken even on failure */
        goto fail;
    }
    Py_XDECREF(mblocks);
    heap_free(&h);
    PyMem_Free(cols);
    PyMem_Free(matrix.data);
    PyMem_Free(ids.data);
    PyMem_Free(recs.data);
    return out;
fail:
    Py_XDECREF(blocks);
    Py_XDECREF(larges);
    Py_XDECREF(mblocks);
    heap_free(&h);
    PyMem_Free(cols);
    PyMem_Free(matrix.data);
    PyMem_Free(ids.data);
    PyMem_Free(recs.data);
    return NULL;
}
