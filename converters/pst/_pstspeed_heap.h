/* The heap-on-node builder the LTP twins share (_pstspeed_heap.c; ltp.Heap's twin). */
#ifndef PSTKIT_PSTSPEED_HEAP_H
#define PSTKIT_PSTSPEED_HEAP_H

#include <Python.h>

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

int heap_init(heap_t *h);
void heap_free(heap_t *h);
long long heap_add(heap_t *h, PyObject *item);
long long heap_add_buf(heap_t *h, const char *data, Py_ssize_t size);
void heap_where(heap_t *h, long long hid, Py_ssize_t *index, Py_ssize_t *offset);
PyObject *heap_build(heap_t *h, int client_sig, long long root);
long long heap_bth(heap_t *h, int ks, int ds, const unsigned char *records, Py_ssize_t n,
                   long long *leaf);
int struct_error(const char *what);
void put16(unsigned char *p, unsigned v);
void put32(unsigned char *p, unsigned long long v);

#endif
