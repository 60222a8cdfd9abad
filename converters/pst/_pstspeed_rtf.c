/* The RTF twins of the optional C speed-ups (the module is _pstspeed.c): LZFu and the HTML
 * de-encapsulation of converters/rtf.py, the same bytes and characters as their Python twins.
 *
 * lzfu(body, raw_size, start, shift) -> bytes
 *   Decompresses the body of an "LZFu" compressed RTF (MS-OXRTFCP 3.1.3), as rtf._lzfu:
 *   `start` is the initial 4096-byte window seen from the first write position, `shift` the
 *   window position of the first output byte. Output stops at raw_size bytes, at the end
 *   marker or at the end of the input; a reference cut by the end of the input is an error
 *   (ValueError). Nothing in the header is trusted for allocation: a body of n bytes can
 *   make at most 8 n output bytes, so raw_size beyond that never allocates more.
 *
 * deencapsulate(rtf, decoder) -> str
 *   The HTML encapsulated in \\fromhtml1 RTF, as rtf._Deencapsulator (MS-OXRTFEX 2.1.3):
 *   the same tokens as rtf._TOKEN, the same state per group, text decoded token by token
 *   (\\'hh runs together) with `decoder(bytes, "replace")`, codecs.getdecoder(...) of the
 *   RTF's code page, so multi-byte code pages decode exactly as in Python. Hidden text is
 *   never decoded: that is where the time goes in Python.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "_pstspeed.h"

#define WINDOW 4096

PyObject *
pst_lzfu(PyObject *self, PyObject *args)
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

PyObject *
pst_deencapsulate(PyObject *self, PyObject *args)
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
