/* The heap-on-node (MS-PST 2.3.1) and BTree-on-heap (2.3.2) of a new PST, for the LTP
 * twins in _pstspeed_ltp.c: laid out as ltp.Heap and ltp._bth lay them out (their
 * Python code is the reference): allocations go to the last block while they fit, every
 * block but the last is full with its page map at the end, fill levels in the first
 * block's header and in the bitmap blocks.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "_pstspeed_heap.h"

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

int
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

void
heap_free(heap_t *h)
{
    for (Py_ssize_t i = 0; i < h->n; i++)
        Py_DECREF(h->item[i]);
    PyMem_Free(h->item);
    PyMem_Free(h->first);
    PyMem_Free(h->end);
}

int
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
long long
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

long long
heap_add_buf(heap_t *h, const char *data, Py_ssize_t size)
{
    return heap_add(h, PyBytes_FromStringAndSize(data, size));
}

/* Heap.where: (block index, offset) of an allocation */
void
heap_where(heap_t *h, long long hid, Py_ssize_t *index, Py_ssize_t *offset)
{
    Py_ssize_t b = (Py_ssize_t)(hid >> 16), k = (Py_ssize_t)((hid >> 5) & 0x7FF);
    Py_ssize_t at = header_size(b);
    for (Py_ssize_t i = h->first[b]; i < h->first[b] + k - 1; i++)
        at += PyBytes_GET_SIZE(h->item[i]);
    *index = b;
    *offset = at;
}

void
put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

void
put32(unsigned char *p, unsigned long long v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* Heap.build: the data blocks, fill levels set */
PyObject *
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
long long
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

