/* Optional C twin of the PST writer's table-context builder (converters/pst/write/ltp.py,
 * whose Python code is the reference; tests/pst/test_write_speedups.py compares the two).
 * The heap is built by _pstspeed_heap.c.
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
#include "_pstspeed_heap.h"

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
