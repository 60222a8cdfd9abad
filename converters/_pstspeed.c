/* Optional C speed-ups for the PST reader. Each function here has a pure-Python twin
 * (converters/rtf.py) that gives the same bytes; the tests compare the two on random and
 * corpus input. The build is optional (setup.py): without a C compiler pstkit runs the
 * Python code, only slower.
 *
 * lzfu(body, raw_size, start, shift) -> bytes
 *   Decompresses the body of an "LZFu" compressed RTF (MS-OXRTFCP 3.1.3), as rtf._lzfu:
 *   `start` is the initial 4096-byte window seen from the first write position, `shift` the
 *   window position of the first output byte. Output stops at raw_size bytes, at the end
 *   marker or at the end of the input; a reference cut by the end of the input is an error
 *   (ValueError). Nothing in the header is trusted for allocation: a body of n bytes can
 *   make at most 8 n output bytes, so raw_size beyond that never allocates more.
 *
 * pc_entries(leaves, blocks, maps, load) -> list[(pid, type, bytes)]
 *   The entries of a property context's BTH leaves (MS-PST 2.3.3.3), as pst_ndb.pc_entries:
 *   values of fixed types up to 4 bytes are the HNID's own bytes, heap items are sliced
 *   from `blocks` through their page maps `maps` (Python slice rules), sub-node values
 *   come from `load(hnid)`. A HID outside the heap is a ValueError (the caller's NdbError).
 *
 * tc_rows(rows, row_size, cols, blocks, maps, value) -> list[list[(pid, type, bytes)]]
 *   The non-empty cells of a table context's row matrix (MS-PST 2.3.4.4), as
 *   pst_ndb.tc_rows: `rows` is the matrix's blocks, `cols` tuples (pid, type, ib, cb,
 *   byte of the cell-existence bit, its mask); a 4-byte cell of a variable type is an HNID:
 *   a heap item is sliced here when its page map is in `maps` (None: a page whose map
 *   could not be read), anything else is what `value(hnid)` gives.
 *
 * named_props(entries, named, watch) -> (dict, bytes | None)
 *   An item's raw properties keyed for Props, as pst_read.ItemReader.props: ids below
 *   0x8000 as they are, named ones (0x8000 and up) by `named` (unknown ones left out), the
 *   first value of a key kept; and the last value of property `watch` that has at least 4
 *   bytes (the item's code page), or None.
 *
 * deencapsulate(rtf, decoder) -> str
 *   The HTML encapsulated in \\fromhtml1 RTF, as rtf._Deencapsulator (MS-OXRTFEX 2.1.3):
 *   the same tokens as rtf._TOKEN, the same state per group, text decoded token by token
 *   (\\'hh runs together) with `decoder(bytes, "replace")`, codecs.getdecoder(...) of the
 *   RTF's code page, so multi-byte code pages decode exactly as in Python. Hidden text is
 *   never decoded: that is where the time goes in Python.
 *
 * b64_lines(data) -> bytes
 *   Base64 (RFC 2045 6.8) in lines of 76 characters joined by CRLF, no CRLF after the last,
 *   as pst_mime._b64: one pass instead of encoding, cutting and joining.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define WINDOW 4096

static PyObject *
lzfu(PyObject *self, PyObject *args)
{
    Py_buffer body, start;
    Py_ssize_t raw_size, shift;
    if (!PyArg_ParseTuple(args, "y*ny*n", &body, &raw_size, &start, &shift))
        return NULL;
    PyObject *result = NULL;
    if (start.len != WINDOW || raw_size < 0 || shift < 0) {
        PyErr_SetString(PyExc_ValueError, "lzfu: bad window or size");
        goto done;
    }
    const unsigned char *in = body.buf;
    Py_ssize_t end = body.len, pos = 0;
    /* 8 items of at most 17 output bytes follow each control byte */
    Py_ssize_t bound = end / 9 * 136 + 136;
    Py_ssize_t want = WINDOW + (raw_size < bound ? raw_size : bound);
    unsigned char *out = PyMem_Malloc((size_t)want + 8 * 17);
    if (out == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(out, start.buf, WINDOW);
    Py_ssize_t here = WINDOW;
    int cut = 0;
    Py_BEGIN_ALLOW_THREADS
    while (pos < end && here < want) {
        unsigned control = in[pos++];
        for (int bit = 0; bit < 8; bit++) {
            if (!(control & (1u << bit))) {
                if (pos >= end)
                    break;
                out[here++] = in[pos++];
                continue;
            }
            if (pos + 1 >= end) {
                cut = pos < end;
                pos = end;
                break;
            }
            unsigned ref = (unsigned)in[pos] << 8 | in[pos + 1];
            pos += 2;
            Py_ssize_t back = (here + shift - (Py_ssize_t)(ref >> 4)) & 0xFFF;
            if (back == 0) { /* the reference points at the write position: the end */
                want = here < want ? here : want;
                pos = end;
                break;
            }
            Py_ssize_t length = (ref & 0xF) + 2;
            /* byte by byte: a reference may overlap its own output (a repeated run) */
            for (Py_ssize_t i = 0; i < length; i++, here++)
                out[here] = out[here - back];
        }
    }
    Py_END_ALLOW_THREADS
    if (cut)
        PyErr_SetString(PyExc_ValueError, "compressed RTF ends inside a reference");
    else
        result = PyBytes_FromStringAndSize((const char *)out + WINDOW,
                                           (here < want ? here : want) - WINDOW);
    PyMem_Free(out);
done:
    PyBuffer_Release(&body);
    PyBuffer_Release(&start);
    return result;
}

/* property types whose value sits in the HNID itself (pst_ndb._INLINE) */
static int
inline_type(unsigned t)
{
    return t == 0x0002 || t == 0x0003 || t == 0x000A || t == 0x000B || t == 0x0004;
}

static PyObject *
entry(unsigned pid, unsigned ptype, PyObject *raw) /* steals raw */
{
    if (raw == NULL)
        return NULL;
    PyObject *t = Py_BuildValue("(IIN)", pid, ptype, raw);
    return t;
}

/* bytes[a:b] with Python's slice rules for 0 <= a, b */
static PyObject *
slice(PyObject *bytes, Py_ssize_t a, Py_ssize_t b)
{
    Py_ssize_t n = PyBytes_GET_SIZE(bytes);
    if (a > n)
        a = n;
    if (b > n)
        b = n;
    if (b < a)
        b = a;
    return PyBytes_FromStringAndSize(PyBytes_AS_STRING(bytes) + a, b - a);
}

static PyObject *
heap_item(PyObject *blocks, PyObject *maps, unsigned long hnid)
{
    Py_ssize_t page = (Py_ssize_t)(hnid >> 16), index = (Py_ssize_t)((hnid >> 5) & 0x7FF);
    if (page >= PyList_GET_SIZE(maps)) {
        PyErr_SetString(PyExc_IndexError, "list index out of range");
        return NULL;
    }
    PyObject *offs = PyList_GET_ITEM(maps, page);
    if (!PyTuple_Check(offs) || index <= 0 || index >= PyTuple_GET_SIZE(offs)) {
        PyErr_Format(PyExc_ValueError, "bad HID %#lx", hnid);
        return NULL;
    }
    Py_ssize_t a = PyLong_AsSsize_t(PyTuple_GET_ITEM(offs, index - 1));
    Py_ssize_t b = PyLong_AsSsize_t(PyTuple_GET_ITEM(offs, index));
    if ((a == -1 || b == -1) && PyErr_Occurred())
        return NULL;
    PyObject *block = PyTuple_GET_ITEM(blocks, page);
    if (!PyBytes_Check(block)) {
        PyErr_SetString(PyExc_TypeError, "heap blocks must be bytes");
        return NULL;
    }
    return slice(block, a < 0 ? 0 : a, b < 0 ? 0 : b);
}

static PyObject *
pc_entries(PyObject *self, PyObject *args)
{
    PyObject *leaves, *blocks, *maps, *load;
    if (!PyArg_ParseTuple(args, "O!O!O!O", &PyList_Type, &leaves, &PyTuple_Type, &blocks,
                          &PyList_Type, &maps, &load))
        return NULL;
    if (PyTuple_GET_SIZE(blocks) < PyList_GET_SIZE(maps)) {
        PyErr_SetString(PyExc_ValueError, "more page maps than heap blocks");
        return NULL;
    }
    /* a tuple holds its items: `load` (Python) cannot free a leaf while it is read */
    PyObject *held = PySequence_Tuple(leaves);
    if (held == NULL)
        return NULL;
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        Py_DECREF(held);
        return NULL;
    }
    for (Py_ssize_t l = 0; l < PyTuple_GET_SIZE(held); l++) {
        PyObject *leaf = PyTuple_GET_ITEM(held, l);
        if (!PyBytes_Check(leaf)) {
            PyErr_SetString(PyExc_TypeError, "BTH leaves must be bytes");
            goto fail;
        }
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(leaf);
        Py_ssize_t n = PyBytes_GET_SIZE(leaf) / 8;
        for (Py_ssize_t i = 0; i < n; i++, p += 8) {
            unsigned pid = p[0] | p[1] << 8, ptype = p[2] | p[3] << 8;
            unsigned long hnid = p[4] | p[5] << 8 | p[6] << 16 | (unsigned long)p[7] << 24;
            PyObject *raw;
            if (inline_type(ptype))
                raw = PyBytes_FromStringAndSize((const char *)p + 4, 4);
            else if (hnid & 0x1F)
                raw = PyObject_CallFunction(load, "k", hnid);
            else if (hnid)
                raw = heap_item(blocks, maps, hnid);
            else
                raw = PyBytes_FromStringAndSize(NULL, 0);
            PyObject *e = entry(pid, ptype, raw);
            if (e == NULL || PyList_Append(out, e) < 0) {
                Py_XDECREF(e);
                goto fail;
            }
            Py_DECREF(e);
        }
    }
    Py_DECREF(held);
    return out;
fail:
    Py_DECREF(held);
    Py_DECREF(out);
    return NULL;
}

static PyObject *
tc_rows(PyObject *self, PyObject *args)
{
    PyObject *rows, *cols, *blocks, *maps, *value;
    Py_ssize_t row_size;
    if (!PyArg_ParseTuple(args, "O!nO!O!O!O", &PyList_Type, &rows, &row_size, &PyList_Type,
                          &cols, &PyTuple_Type, &blocks, &PyList_Type, &maps, &value))
        return NULL;
    if (PyTuple_GET_SIZE(blocks) < PyList_GET_SIZE(maps)) {
        PyErr_SetString(PyExc_ValueError, "more page maps than heap blocks");
        return NULL;
    }
    Py_ssize_t ncols = PyList_GET_SIZE(cols);
    /* the columns, unpacked once: pid, type, ib, cb, byte, mask */
    long *c = PyMem_Calloc((size_t)(ncols ? ncols : 1), 6 * sizeof(long));
    if (c == NULL)
        return PyErr_NoMemory();
    /* a tuple holds its items: `value` (Python) cannot free a block while it is read */
    PyObject *held = PySequence_Tuple(rows);
    if (held == NULL) {
        PyMem_Free(c);
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL)
        goto fail;
    for (Py_ssize_t k = 0; k < ncols; k++) {
        PyObject *col = PyList_GET_ITEM(cols, k);
        if (!PyTuple_Check(col) || PyTuple_GET_SIZE(col) != 6) {
            PyErr_SetString(PyExc_TypeError, "a column is 6 integers");
            goto fail;
        }
        for (int j = 0; j < 6; j++) {
            c[6 * k + j] = PyLong_AsLong(PyTuple_GET_ITEM(col, j));
            if (c[6 * k + j] == -1 && PyErr_Occurred())
                goto fail;
        }
    }
    if (row_size <= 0)
        goto done;
    for (Py_ssize_t b = 0; b < PyTuple_GET_SIZE(held); b++) {
        PyObject *block = PyTuple_GET_ITEM(held, b);
        if (!PyBytes_Check(block)) {
            PyErr_SetString(PyExc_TypeError, "row blocks must be bytes");
            goto fail;
        }
        const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(block);
        Py_ssize_t nrows = PyBytes_GET_SIZE(block) / row_size;
        for (Py_ssize_t r = 0; r < nrows; r++) {
            const unsigned char *row = data + r * row_size;
            PyObject *cells = PyList_New(0);
            if (cells == NULL || PyList_Append(out, cells) < 0) {
                Py_XDECREF(cells);
                goto fail;
            }
            Py_DECREF(cells); /* out holds it */
            for (Py_ssize_t k = 0; k < ncols; k++) {
                long *col = c + 6 * k;
                long ib = col[2], cb = col[3], at = col[4];
                if (at < 0 || at >= row_size) {
                    PyErr_SetString(PyExc_IndexError, "index out of range");
                    goto fail;
                }
                if (!(row[at] & col[5]))
                    continue; /* the cell is empty */
                Py_ssize_t a = ib < row_size ? ib : row_size;
                Py_ssize_t z = ib + cb < row_size ? ib + cb : row_size;
                PyObject *cell;
                if (cb == 4 && !inline_type((unsigned)col[1])) {
                    if (z - a < 4) {
                        PyErr_SetString(PyExc_ValueError, "unpack_from requires 4 bytes");
                        goto fail;
                    }
                    const unsigned char *h = row + a;
                    unsigned long hnid = h[0] | h[1] << 8 | h[2] << 16 | (unsigned long)h[3] << 24;
                    Py_ssize_t page = (Py_ssize_t)(hnid >> 16);
                    if (hnid && !(hnid & 0x1F) && page < PyList_GET_SIZE(maps)
                        && PyList_GET_ITEM(maps, page) != Py_None)
                        cell = heap_item(blocks, maps, hnid); /* as Heap.item */
                    else
                        cell = PyObject_CallFunction(value, "k", hnid);
                }
                else
                    cell = PyBytes_FromStringAndSize((const char *)row + a, z > a ? z - a : 0);
                PyObject *e = entry((unsigned)col[0], (unsigned)col[1], cell);
                if (e == NULL || PyList_Append(cells, e) < 0) {
                    Py_XDECREF(e);
                    goto fail;
                }
                Py_DECREF(e);
            }
        }
    }
done:
    PyMem_Free(c);
    Py_DECREF(held);
    return out;
fail:
    PyMem_Free(c);
    Py_DECREF(held);
    Py_XDECREF(out);
    return NULL;
}

static PyObject *
named_props(PyObject *self, PyObject *args)
{
    PyObject *entries, *named;
    long watch;
    if (!PyArg_ParseTuple(args, "OO!l", &entries, &PyDict_Type, &named, &watch))
        return NULL;
    PyObject *held = PySequence_Tuple(entries);
    if (held == NULL)
        return NULL;
    PyObject *raw = PyDict_New(), *seen = Py_None;
    if (raw == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(held); i++) {
        PyObject *e = PyTuple_GET_ITEM(held, i);
        if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) != 3) {
            PyErr_SetString(PyExc_TypeError, "an entry is (id, type, value)");
            goto fail;
        }
        PyObject *pid = PyTuple_GET_ITEM(e, 0), *value = PyTuple_GET_ITEM(e, 2);
        long id = PyLong_AsLong(pid);
        if (id == -1 && PyErr_Occurred())
            goto fail;
        if (id == watch) {
            Py_ssize_t n = PyObject_Length(value);
            if (n < 0)
                goto fail;
            if (n >= 4)
                seen = value;
        }
        PyObject *key = pid;
        if (id >= 0x8000) {
            key = PyDict_GetItemWithError(named, pid);
            if (key == NULL) {
                if (PyErr_Occurred())
                    goto fail;
                continue; /* a named property we do not use */
            }
        }
        PyObject *pair = PyTuple_Pack(2, PyTuple_GET_ITEM(e, 1), value);
        if (pair == NULL)
            goto fail;
        PyObject *kept = PyDict_SetDefault(raw, key, pair); /* the first value wins */
        Py_DECREF(pair);
        if (kept == NULL)
            goto fail;
    }
    PyObject *result = Py_BuildValue("(NO)", raw, seen);
    Py_DECREF(held);
    return result;
fail:
    Py_DECREF(held);
    Py_XDECREF(raw);
    return NULL;
}

/* --- RTF de-encapsulation ------------------------------------------------------------ */

typedef struct {
    char skip, htmltag, htmlrtf;
    long long uc;
} RtfState;

typedef struct {
    PyObject *out;      /* list of str */
    PyObject *decoder;  /* codecs.getdecoder(code page) */
    unsigned char *pending;
    Py_ssize_t npending, cpending;
    RtfState *stack;
    Py_ssize_t depth, cdepth;
    RtfState state;
    int visible, expect_dest;
    long long skip_chars;
} Rtf;

static int
rtf_letter(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
rtf_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int
rtf_hex(unsigned char c)
{
    return rtf_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static void
rtf_set(Rtf *r, RtfState st)
{
    r->state = st;
    r->visible = !st.skip && (st.htmltag || !st.htmlrtf);
}

static PyObject *
rtf_decode(Rtf *r, const unsigned char *data, Py_ssize_t n)
{
    PyObject *b = PyBytes_FromStringAndSize((const char *)data, n);
    if (b == NULL)
        return NULL;
    PyObject *res = PyObject_CallFunction(r->decoder, "Os", b, "replace");
    Py_DECREF(b);
    if (res == NULL)
        return NULL;
    if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) < 1
        || !PyUnicode_Check(PyTuple_GET_ITEM(res, 0))) {
        Py_DECREF(res);
        PyErr_SetString(PyExc_TypeError, "the decoder did not return (str, int)");
        return NULL;
    }
    PyObject *text = PyTuple_GET_ITEM(res, 0);
    Py_INCREF(text);
    Py_DECREF(res);
    return text;
}

/* _Deencapsulator._emit: drop what \uN left to skip, keep the rest if visible; steals s */
static int
rtf_emit(Rtf *r, PyObject *s)
{
    if (s == NULL)
        return -1;
    Py_ssize_t len = PyUnicode_GET_LENGTH(s);
    if (r->skip_chars) {
        Py_ssize_t drop = r->skip_chars < len ? (Py_ssize_t)r->skip_chars : len;
        r->skip_chars -= drop;
        if (drop) {
            PyObject *rest = PyUnicode_Substring(s, drop, len);
            Py_DECREF(s);
            if (rest == NULL)
                return -1;
            s = rest;
            len -= drop;
        }
    }
    int rc = 0;
    if (len && r->visible)
        rc = PyList_Append(r->out, s);
    Py_DECREF(s);
    return rc;
}

static int
rtf_flush(Rtf *r)
{
    if (!r->npending)
        return 0;
    Py_ssize_t n = r->npending;
    r->npending = 0;
    if (!r->visible)
        return 0;
    PyObject *text = rtf_decode(r, r->pending, n);
    if (text == NULL)
        return -1;
    int rc = PyList_Append(r->out, text);
    Py_DECREF(text);
    return rc;
}

static int
rtf_word_is(const unsigned char *w, Py_ssize_t n, const char *name)
{
    return (Py_ssize_t)strlen(name) == n && memcmp(w, name, (size_t)n) == 0;
}

static const char *const RTF_SKIP[] = {
    "fonttbl", "colortbl", "stylesheet", "info", "pict", "object", "header", "footer",
    "listtable", "listoverridetable", "rsidtbl", "generator", "themedata",
    "colorschememapping", "latentstyles", "datastore", "xmlnstbl", "mhtmltag", NULL,
};

/* _Deencapsulator._word */
static int
rtf_word(Rtf *r, const unsigned char *w, Py_ssize_t n, int has_num, long long num)
{
    int dest = r->expect_dest;
    r->expect_dest = 0;
    if (rtf_word_is(w, n, "par") && !dest)
        return rtf_emit(r, PyUnicode_FromString("\r\n"));
    RtfState st = r->state;
    int skip_word = 0;
    for (const char *const *k = RTF_SKIP; *k; k++)
        skip_word |= rtf_word_is(w, n, *k);
    if (rtf_word_is(w, n, "htmltag")) {
        st.htmltag = 1;
        rtf_set(r, st);
    }
    else if (dest || skip_word) {
        st.skip = 1;
        rtf_set(r, st);
    }
    else if (rtf_word_is(w, n, "htmlrtf")) {
        st.htmlrtf = !has_num || num != 0;
        rtf_set(r, st);
    }
    else if (rtf_word_is(w, n, "uc") && has_num) {
        st.uc = num > 0 ? num : 0;
        rtf_set(r, st);
    }
    else if (rtf_word_is(w, n, "u") && has_num) {
        long long cp = ((num % 65536) + 65536) % 65536;
        if (rtf_emit(r, PyUnicode_FromOrdinal((int)cp)) < 0)
            return -1;
        r->skip_chars = st.uc;
    }
    else if (rtf_word_is(w, n, "par") || rtf_word_is(w, n, "line"))
        return rtf_emit(r, PyUnicode_FromString("\r\n"));
    else if (rtf_word_is(w, n, "tab"))
        return rtf_emit(r, PyUnicode_FromString("\t"));
    return 0;
}

/* _Deencapsulator._sym */
static int
rtf_sym(Rtf *r, unsigned char c)
{
    if (c == '*') {
        r->expect_dest = 1;
        return 0;
    }
    r->expect_dest = 0;
    switch (c) {
    case '\\': return rtf_emit(r, PyUnicode_FromString("\\"));
    case '{': return rtf_emit(r, PyUnicode_FromString("{"));
    case '}': return rtf_emit(r, PyUnicode_FromString("}"));
    case '~': return rtf_emit(r, PyUnicode_FromOrdinal(0xA0));
    case '_': return rtf_emit(r, PyUnicode_FromString("-"));
    default: return 0; /* "\-" (an optional hyphen) and unknown symbols give nothing */
    }
}

static int
rtf_push(Rtf *r)
{
    if (r->depth == r->cdepth) {
        Py_ssize_t c = r->cdepth ? 2 * r->cdepth : 64;
        RtfState *grown = PyMem_Realloc(r->stack, (size_t)c * sizeof(RtfState));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        r->stack = grown;
        r->cdepth = c;
    }
    r->stack[r->depth++] = r->state;
    return 0;
}

static int
rtf_pending(Rtf *r, unsigned char byte)
{
    if (r->npending == r->cpending) {
        Py_ssize_t c = r->cpending ? 2 * r->cpending : 256;
        unsigned char *grown = PyMem_Realloc(r->pending, (size_t)c);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        r->pending = grown;
        r->cpending = c;
    }
    r->pending[r->npending++] = byte;
    return 0;
}

static int
rtf_hexval(unsigned char c)
{
    return rtf_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* One token at s[*at] (of n bytes), as rtf._TOKEN matches it, handled as run() does. */
static int
rtf_token(Rtf *r, const unsigned char *s, Py_ssize_t n, Py_ssize_t *at)
{
    Py_ssize_t i = *at;
    unsigned char c = s[i];
    if (c == '\r' || c == '\n') { /* crlf: nothing, not even a flush */
        while (i < n && (s[i] == '\r' || s[i] == '\n'))
            i++;
        *at = i;
        return 0;
    }
    if (c == '\\' && i + 3 < n && s[i + 1] == '\'' && rtf_hex(s[i + 2]) && rtf_hex(s[i + 3])) {
        *at = i + 4; /* \'hh: no flush either */
        unsigned char byte = (unsigned char)(rtf_hexval(s[i + 2]) << 4 | rtf_hexval(s[i + 3]));
        if (r->skip_chars) {
            r->skip_chars--;
            return 0;
        }
        return r->visible ? rtf_pending(r, byte) : 0;
    }
    if (c == '\\' && i + 1 >= n) { /* a lone backslash at the end matches nothing */
        *at = n;
        return 0;
    }
    if (rtf_flush(r) < 0)
        return -1;
    if (c == '{') {
        *at = i + 1;
        r->expect_dest = 0;
        return rtf_push(r);
    }
    if (c == '}') {
        *at = i + 1;
        rtf_set(r, r->depth ? r->stack[--r->depth] : r->state);
        return 0;
    }
    if (c == '\\' && rtf_letter(s[i + 1])) { /* a control word, its number, one space */
        Py_ssize_t w = i + 1, j = w;
        while (j < n && j - w < 32 && rtf_letter(s[j]))
            j++;
        Py_ssize_t wn = j - w;
        int has_num = 0, neg = 0;
        long long num = 0;
        if (j < n && (rtf_digit(s[j]) || (s[j] == '-' && j + 1 < n && rtf_digit(s[j + 1])))) {
            has_num = 1;
            if (s[j] == '-') {
                neg = 1;
                j++;
            }
            Py_ssize_t d = j;
            while (j < n && j - d < 10 && rtf_digit(s[j]))
                num = num * 10 + (s[j++] - '0');
            if (neg)
                num = -num;
        }
        if (j < n && s[j] == ' ')
            j++;
        *at = j;
        return rtf_word(r, s + w, wn, has_num, num);
    }
    if (c == '\\') { /* a control symbol: any other byte after the backslash */
        *at = i + 2;
        return rtf_sym(r, s[i + 1]);
    }
    Py_ssize_t j = i; /* text */
    while (j < n && s[j] != '{' && s[j] != '}' && s[j] != '\\' && s[j] != '\r' && s[j] != '\n')
        j++;
    *at = j;
    r->expect_dest = 0;
    if (r->skip_chars)
        return rtf_emit(r, rtf_decode(r, s + i, j - i));
    if (!r->visible)
        return 0; /* hidden text is never decoded */
    PyObject *text = rtf_decode(r, s + i, j - i);
    if (text == NULL)
        return -1;
    int rc = PyList_Append(r->out, text);
    Py_DECREF(text);
    return rc;
}

static PyObject *
deencapsulate(PyObject *self, PyObject *args)
{
    Py_buffer in;
    PyObject *decoder;
    if (!PyArg_ParseTuple(args, "y*O", &in, &decoder))
        return NULL;
    Rtf r = {0};
    r.decoder = decoder;
    r.state.uc = 1;
    rtf_set(&r, r.state);
    PyObject *result = NULL;
    r.out = PyList_New(0);
    if (r.out == NULL)
        goto done;
    const unsigned char *s = in.buf;
    Py_ssize_t at = 0;
    while (at < in.len)
        if (rtf_token(&r, s, in.len, &at) < 0)
            goto done;
    if (rtf_flush(&r) < 0)
        goto done;
    PyObject *empty = PyUnicode_FromString("");
    if (empty != NULL) {
        result = PyUnicode_Join(empty, r.out);
        Py_DECREF(empty);
    }
done:
    Py_XDECREF(r.out);
    PyMem_Free(r.pending);
    PyMem_Free(r.stack);
    PyBuffer_Release(&in);
    return result;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *
b64_quantum(char *o, const unsigned char *i, Py_ssize_t n) /* n = 1, 2 or 3 input bytes */
{
    unsigned v = (unsigned)i[0] << 16 | (n > 1 ? (unsigned)i[1] << 8 : 0) | (n > 2 ? i[2] : 0);
    o[0] = B64[v >> 18];
    o[1] = B64[(v >> 12) & 63];
    o[2] = n > 1 ? B64[(v >> 6) & 63] : '=';
    o[3] = n > 2 ? B64[v & 63] : '=';
    return o + 4;
}

static PyObject *
b64_lines(PyObject *self, PyObject *args)
{
    Py_buffer in;
    if (!PyArg_ParseTuple(args, "y*", &in))
        return NULL;
    Py_ssize_t n = in.len;
    if (n > (PY_SSIZE_T_MAX / 4) * 3 - 3) {
        PyBuffer_Release(&in);
        return PyErr_NoMemory();
    }
    Py_ssize_t chars = (n + 2) / 3 * 4, lines = (chars + 75) / 76;
    PyObject *out = PyBytes_FromStringAndSize(NULL, chars + (lines ? 2 * (lines - 1) : 0));
    if (out == NULL) {
        PyBuffer_Release(&in);
        return NULL;
    }
    char *o = PyBytes_AS_STRING(out);
    const unsigned char *i = in.buf;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t left = n;
    while (left > 0) {
        Py_ssize_t chunk = left < 57 ? left : 57; /* 57 bytes make one 76-character line */
        const unsigned char *stop = i + chunk;
        while (stop - i >= 3) {
            o = b64_quantum(o, i, 3);
            i += 3;
        }
        if (stop - i > 0) {
            o = b64_quantum(o, i, stop - i);
            i = stop;
        }
        left -= chunk;
        if (left > 0) {
            *o++ = '\r';
            *o++ = '\n';
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&in);
    return out;
}

static PyMethodDef methods[] = {
    {"named_props", named_props, METH_VARARGS, "An item's raw properties keyed for Props."},
    {"deencapsulate", deencapsulate, METH_VARARGS, "HTML from \\fromhtml1 RTF (rtf.py)."},
    {"b64_lines", b64_lines, METH_VARARGS, "Base64 in CRLF-joined 76-character lines."},
    {"lzfu", lzfu, METH_VARARGS, "Decompress an LZFu compressed RTF body (see rtf._lzfu)."},
    {"pc_entries", pc_entries, METH_VARARGS, "A property context's raw entries (pst_ndb)."},
    {"tc_rows", tc_rows, METH_VARARGS, "A table context's non-empty cells (pst_ndb)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pstspeed", "Optional C speed-ups for the PST reader.", -1, methods,
};

PyMODINIT_FUNC
PyInit__pstspeed(void)
{
    return PyModule_Create(&module);
}
