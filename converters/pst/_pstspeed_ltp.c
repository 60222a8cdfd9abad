/* Optional C twins of the PST writer's LTP builders (converters/pst/write/ltp.py, whose
 * Python code is the reference; tests/pst/test_write_speedups.py compares the two).
 * The heaps are built by _pstspeed_heap.c.
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
 * tc_build, the table contexts' twin, is in _pstspeed_tc.c.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

#include "_pstspeed.h"
#include "_pstspeed_heap.h"

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
