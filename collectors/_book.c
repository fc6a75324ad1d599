/* The local order book in C: collectors.book.OrderBook's behaviour, at C speed.

   collectors/book.py holds the reference implementation in pure Python (PyOrderBook) and says
   what the book must do; tests/collectors/test_book_compiled.py holds the two equal on random
   books and real captures. This file only changes how the levels are kept:

   - each side is a pair of arrays (key, quantity) sorted by key ascending, with key = price for
     bids and -price for asks, so that the best level of either side is the LAST element: the
     frequent changes near the touch move few elements, and the best is read in O(1);
   - a level is found by binary search on the keys; float(str) of the same text is always the
     same double, so a level is matched by exact key;
   - sums and walks go from the touch outwards in the order compliance.metrics walks a side, so
     band_notional is bit for bit metrics.depth_within_band's sum (built with -ffp-contract=off:
     no fused multiply-add, the same roundings as CPython's float arithmetic).

   Price and quantity texts are parsed to exactly the float that Python's float(text) gives:
   plain decimals with at most 15-16 significant digits by Clinger's exact fast path (an integer
   below 2^53 divided by an exact power of ten is one correctly rounded IEEE division), anything
   else by PyOS_string_to_double — the function float() itself calls — or by float() itself. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- numbers ----------------------------------------------------------------------------- */

static const double POW10[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};
#define TWO_53 9007199254740992ULL

/* *out = float(obj); -1 with the exception float() raises. */
static int
to_double(PyObject *obj, double *out)
{
    if (PyUnicode_CheckExact(obj)) {
        Py_ssize_t len;
        const char *text;
        if (PyUnicode_IS_COMPACT_ASCII(obj)) { /* JSON numbers: their bytes are the str's own */
            text = (const char *)PyUnicode_DATA(obj);
            len = PyUnicode_GET_LENGTH(obj);
        }
        else {
            text = PyUnicode_AsUTF8AndSize(obj, &len);
            if (text == NULL) {
                PyErr_Clear(); /* e.g. lone surrogates: float() below says what is wrong */
                goto generic;
            }
        }
#if FLT_EVAL_METHOD == 0
        {
            /* digits [. digits]: the venues' way of writing prices and quantities */
            const char *p = text, *end = text + len;
            uint64_t mantissa = 0;
            int digits = 0, decimals = 0, dot = 0;
            for (; p < end; p++) {
                unsigned char c = (unsigned char)*p;
                if ((unsigned)(c - '0') <= 9u) {
                    if (++digits > 19)
                        goto strtod;
                    mantissa = mantissa * 10 + (c - '0');
                    decimals += dot;
                }
                else if (c == '.' && !dot) {
                    dot = 1;
                }
                else {
                    goto strtod;
                }
            }
            if (digits == 0 || mantissa > TWO_53 || decimals > 22)
                goto strtod;
            *out = (double)mantissa / POW10[decimals];
            return 0;
        }
    strtod:
#endif
        {
            char *end;
            double value = PyOS_string_to_double(text, &end, NULL);
            if (value == -1.0 && PyErr_Occurred()) {
                PyErr_Clear();
            }
            else if (end == text + len) {
                *out = value;
                return 0;
            }
            /* not all of it is a number (whitespace, underscores...): float() decides */
        }
    }
generic:
    {
        PyObject *number = PyNumber_Float(obj);
        if (number == NULL)
            return -1;
        *out = PyFloat_AS_DOUBLE(number);
        Py_DECREF(number);
        return 0;
    }
}

/* ---- one side ---------------------------------------------------------------------------- */

typedef struct {
    double *key; /* ascending; the best level is key[n - 1] */
    double *qty; /* positive and finite */
    Py_ssize_t n;
    Py_ssize_t cap;
    double sign; /* key = sign × price: +1 bids, -1 asks */
} Side;

static int
side_reserve(Side *side, Py_ssize_t need)
{
    if (need <= side->cap)
        return 0;
    Py_ssize_t cap = side->cap ? side->cap : 64;
    while (cap < need)
        cap *= 2;
    double *key = PyMem_Realloc(side->key, (size_t)cap * sizeof(double));
    if (key == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    side->key = key;
    double *qty = PyMem_Realloc(side->qty, (size_t)cap * sizeof(double));
    if (qty == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    side->qty = qty;
    side->cap = cap;
    return 0;
}

/* The first index whose key is >= key (n when none is). */
static inline Py_ssize_t
lower_bound(const double *keys, Py_ssize_t n, double key)
{
    const double *base = keys;
    while (n > 1) {
        Py_ssize_t half = n / 2;
        base = (base[half - 1] < key) ? base + half : base;
        n -= half;
    }
    return (base - keys) + (n == 1 && *base < key);
}

static int
side_set(Side *side, double key, double qty)
{
    Py_ssize_t n = side->n, i;
    if (n == 0 || key > side->key[n - 1]) {
        i = n; /* a new best level */
    }
    else {
        i = lower_bound(side->key, n, key);
        if (side->key[i] == key) {
            side->qty[i] = qty;
            return 0;
        }
    }
    if (side_reserve(side, n + 1) < 0)
        return -1;
    memmove(side->key + i + 1, side->key + i, (size_t)(n - i) * sizeof(double));
    memmove(side->qty + i + 1, side->qty + i, (size_t)(n - i) * sizeof(double));
    side->key[i] = key;
    side->qty[i] = qty;
    side->n = n + 1;
    return 0;
}

static void
side_remove(Side *side, double key)
{
    Py_ssize_t n = side->n;
    if (n == 0)
        return;
    Py_ssize_t i = lower_bound(side->key, n, key);
    if (i == n || side->key[i] != key)
        return; /* removing a level the book does not hold is normal (futures step 9) */
    memmove(side->key + i, side->key + i + 1, (size_t)(n - i - 1) * sizeof(double));
    memmove(side->qty + i, side->qty + i + 1, (size_t)(n - i - 1) * sizeof(double));
    side->n = n - 1;
}

/* A level's two items as new references, or -1 with the error unpacking `price, qty` gives. */
static int
level_items(PyObject *level, PyObject **price, PyObject **qty)
{
    if ((PyList_CheckExact(level) || PyTuple_CheckExact(level)) && Py_SIZE(level) == 2) {
        PyObject **items = PySequence_Fast_ITEMS(level);
        *price = Py_NewRef(items[0]);
        *qty = Py_NewRef(items[1]);
        return 0;
    }
    PyObject *seq = PySequence_Fast(level, "a level must be a [price, quantity] pair");
    if (seq == NULL)
        return -1; /* TypeError, as unpacking a non-iterable is */
    if (PySequence_Fast_GET_SIZE(seq) != 2) {
        PyErr_Format(PyExc_ValueError, "level %R is not a [price, quantity] pair", level);
        Py_DECREF(seq);
        return -1;
    }
    *price = Py_NewRef(PySequence_Fast_GET_ITEM(seq, 0));
    *qty = Py_NewRef(PySequence_Fast_GET_ITEM(seq, 1));
    Py_DECREF(seq);
    return 0;
}

/* Set absolute quantities, in order; a quantity of 0 removes the level. As BookSide.apply:
   the levels before a bad one stay applied. (Items are fetched and held one at a time: float()
   of an object that is not a str may run Python code.) */
static int
side_apply(Side *side, PyObject *levels)
{
    PyObject *seq = PySequence_Fast(levels, "levels must be an iterable of [price, quantity] pairs");
    if (seq == NULL)
        return -1;
    const double sign = side->sign;
    for (Py_ssize_t j = 0; j < PySequence_Fast_GET_SIZE(seq); j++) {
        PyObject *level = Py_NewRef(PySequence_Fast_GET_ITEM(seq, j));
        PyObject *price_obj, *qty_obj;
        double price, qty;
        int failed = level_items(level, &price_obj, &qty_obj) < 0;
        Py_DECREF(level);
        if (failed)
            goto error;
        failed = to_double(price_obj, &price) < 0 || to_double(qty_obj, &qty) < 0;
        if (!failed) {
            if (qty == 0.0) {
                /* a price that is no positive finite number cannot be held: nothing to remove */
                if (price > 0.0 && price < HUGE_VAL)
                    side_remove(side, sign * price);
            }
            else if (qty > 0.0 && qty < HUGE_VAL && price > 0.0 && price < HUGE_VAL) {
                failed = side_set(side, sign * price, qty) < 0;
            }
            else {
                PyErr_Format(PyExc_ValueError,
                             "level [%R, %R] is not a positive finite price and a non-negative finite quantity",
                             price_obj, qty_obj);
                failed = 1;
            }
        }
        Py_DECREF(price_obj);
        Py_DECREF(qty_obj);
        if (failed)
            goto error;
    }
    Py_DECREF(seq);
    return 0;
error:
    Py_DECREF(seq);
    return -1;
}

/* sum(values) as CPython 3.12+ sums floats (Neumaier compensation added at the end when finite),
   so that a snapshot is refused on exactly the sums the Python book refuses. */
static double
python_sum(const double *values, Py_ssize_t n)
{
    double total = 0.0, compensation = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {
        double x = values[i], t = total + x;
        if (fabs(total) >= fabs(x))
            compensation += (total - t) + x;
        else
            compensation += (x - t) + total;
        total = t;
    }
    if (compensation != 0.0 && isfinite(compensation))
        total += compensation;
    return total;
}

typedef struct {
    double key;
    double qty;
    Py_ssize_t index;
} Entry;

static int
entry_order(const void *a, const void *b)
{
    const Entry *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* Converts the errors of reading a level by index into ValueError, as BookSide.load's _parse does. */
static int
as_value_error(void)
{
    if (PyErr_ExceptionMatches(PyExc_IndexError) || PyErr_ExceptionMatches(PyExc_KeyError) ||
        PyErr_ExceptionMatches(PyExc_TypeError)) {
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_Format(PyExc_ValueError, "levels are not [price, quantity] pairs (%S)", value ? value : Py_None);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(traceback);
    }
    return -1;
}

static PyObject *ZERO, *ONE; /* the ints 0 and 1, for levels that are neither lists nor tuples */

/* Replace the side by a snapshot's levels (BookSide.load): every level checked before any is
   kept; zero quantities dropped; a price given twice keeps its last quantity. On error the side
   stays empty. *count is the number of levels given. */
static int
side_load(Side *side, PyObject *levels, Py_ssize_t *count)
{
    side->n = 0;
    /* a tuple copy: float() of an object that is not a str may run Python code */
    PyObject *seq = PySequence_Tuple(levels);
    if (seq == NULL)
        return as_value_error();
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    *count = n;
    double *prices = PyMem_Malloc((size_t)(n ? n : 1) * 2 * sizeof(double));
    Entry *entries = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(Entry));
    if (prices == NULL || entries == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    double *qtys = prices + n;
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *level = PyTuple_GET_ITEM(seq, j);
        PyObject *price, *qty;
        if ((PyList_CheckExact(level) || PyTuple_CheckExact(level)) && Py_SIZE(level) >= 2) {
            price = Py_NewRef(PySequence_Fast_ITEMS(level)[0]);
            qty = Py_NewRef(PySequence_Fast_ITEMS(level)[1]);
        }
        else {
            /* as operator.itemgetter(0) and (1) read it */
            price = PyObject_GetItem(level, ZERO);
            qty = price ? PyObject_GetItem(level, ONE) : NULL;
        }
        int ok = qty != NULL && to_double(price, &prices[j]) == 0 && to_double(qty, &qtys[j]) == 0;
        Py_XDECREF(price);
        Py_XDECREF(qty);
        if (!ok) {
            as_value_error();
            goto error;
        }
    }
    if (n) {
        /* The Python book's four checks: min(prices) > 0, sum(prices) < inf, min(qtys) >= 0,
           sum(qtys) < inf; a NaN anywhere makes its sum NaN. */
        int ok = python_sum(prices, n) < HUGE_VAL && python_sum(qtys, n) < HUGE_VAL;
        for (Py_ssize_t j = 0; ok && j < n; j++)
            ok = prices[j] > 0.0 && qtys[j] >= 0.0;
        if (!ok) {
            PyObject *text = PyObject_Str(levels);
            if (text != NULL) {
                PyErr_Format(PyExc_ValueError,
                             "levels with a price that is not positive and finite or a quantity that is "
                             "negative or not finite: %.200U", text);
                Py_DECREF(text);
            }
            goto error;
        }
    }
    Py_ssize_t kept = 0;
    int sorted = 1; /* best first, as the venues send them: keys descending */
    for (Py_ssize_t j = 0; j < n; j++) {
        if (qtys[j] == 0.0)
            continue;
        entries[kept].key = side->sign * prices[j];
        entries[kept].qty = qtys[j];
        entries[kept].index = j;
        if (kept && entries[kept].key >= entries[kept - 1].key)
            sorted = 0;
        kept++;
    }
    if (side_reserve(side, kept) < 0)
        goto error;
    if (sorted) {
        for (Py_ssize_t j = 0; j < kept; j++) {
            side->key[kept - 1 - j] = entries[j].key;
            side->qty[kept - 1 - j] = entries[j].qty;
        }
        side->n = kept;
    }
    else {
        /* Any order, repeated prices: the last quantity given for a price wins, as in a dict. */
        qsort(entries, (size_t)kept, sizeof(Entry), entry_order);
        Py_ssize_t m = 0;
        for (Py_ssize_t j = 0; j < kept; j++) {
            if (j + 1 < kept && entries[j + 1].key == entries[j].key)
                continue;
            side->key[m] = entries[j].key;
            side->qty[m] = entries[j].qty;
            m++;
        }
        side->n = m;
    }
    PyMem_Free(prices);
    PyMem_Free(entries);
    Py_DECREF(seq);
    return 0;
error:
    side->n = 0;
    PyMem_Free(prices);
    PyMem_Free(entries);
    Py_DECREF(seq);
    return -1;
}

static PyObject *
side_best(const Side *side)
{
    if (side->n == 0)
        Py_RETURN_NONE;
    return PyFloat_FromDouble(side->sign * side->key[side->n - 1]);
}

/* Σ price × qty from the touch outwards while the price is >= edge (bids) or <= edge (asks):
   metrics._side_notional's loop over this side. */
static double
side_band_notional(const Side *side, double edge)
{
    double total = 0.0;
    Py_ssize_t i = side->n;
    if (side->sign > 0) {
        while (i-- > 0) {
            double price = side->key[i];
            if (price < edge)
                break;
            total += price * side->qty[i];
        }
    }
    else {
        while (i-- > 0) {
            double price = -side->key[i];
            if (price > edge)
                break;
            total += price * side->qty[i];
        }
    }
    return total;
}

static PyObject *
level_tuple(const Side *side, Py_ssize_t i)
{
    PyObject *price = PyFloat_FromDouble(side->sign * side->key[i]);
    PyObject *qty = PyFloat_FromDouble(side->qty[i]);
    if (price == NULL || qty == NULL) {
        Py_XDECREF(price);
        Py_XDECREF(qty);
        return NULL;
    }
    PyObject *pair = PyTuple_New(2);
    if (pair == NULL) {
        Py_DECREF(price);
        Py_DECREF(qty);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, price);
    PyTuple_SET_ITEM(pair, 1, qty);
    return pair;
}

/* ---- the book ---------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    Side side[2]; /* 0: bids, 1: asks */
    PyObject *update_id;
    PyObject *known_bid_edge;
    PyObject *known_ask_edge;
} Book;

static PyTypeObject BookType;
static PyTypeObject LevelsType;

/* A best-first walk of one side (book.bids() / book.asks()). */
typedef struct {
    PyObject_HEAD
    Book *book;
    int side;
    Py_ssize_t walked; /* levels yielded so far */
} Levels;

static void
book_reset(Book *self)
{
    self->side[0].n = 0;
    self->side[1].n = 0;
    Py_XSETREF(self->update_id, Py_NewRef(ZERO));
    Py_XSETREF(self->known_bid_edge, Py_NewRef(Py_None));
    Py_XSETREF(self->known_ask_edge, Py_NewRef(Py_None));
}

static PyObject *
book_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) || (kwargs != NULL && PyDict_GET_SIZE(kwargs))) {
        PyErr_SetString(PyExc_TypeError, "OrderBook() takes no arguments");
        return NULL;
    }
    Book *self = (Book *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->side[0].sign = 1.0;
    self->side[1].sign = -1.0;
    book_reset(self);
    return (PyObject *)self;
}

static void
book_dealloc(Book *self)
{
    for (int s = 0; s < 2; s++) {
        PyMem_Free(self->side[s].key);
        PyMem_Free(self->side[s].qty);
    }
    Py_XDECREF(self->update_id);
    Py_XDECREF(self->known_bid_edge);
    Py_XDECREF(self->known_ask_edge);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
book_clear(Book *self, PyObject *Py_UNUSED(ignored))
{
    book_reset(self);
    Py_RETURN_NONE;
}

/* book.SNAPSHOT_LIMITS: a snapshot of exactly one of these sizes is taken as truncated when the
   request limit is unknown (tests/collectors/test_book_compiled.py holds the two lists equal). */
static const Py_ssize_t SNAPSHOT_LIMITS[] = {5, 10, 20, 50, 100, 500, 1000, 5000};

static int
truncated(Py_ssize_t count, PyObject *limit)
{
    if (limit == Py_None) {
        for (size_t i = 0; i < sizeof(SNAPSHOT_LIMITS) / sizeof(SNAPSHOT_LIMITS[0]); i++)
            if (count == SNAPSHOT_LIMITS[i])
                return 1;
        return 0;
    }
    PyObject *count_obj = PyLong_FromSsize_t(count);
    if (count_obj == NULL)
        return -1;
    int result = PyObject_RichCompareBool(count_obj, limit, Py_GE);
    Py_DECREF(count_obj);
    return result;
}

static PyObject *
book_load_snapshot(Book *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"update_id", "bids", "asks", "limit", NULL};
    PyObject *update_id, *bids, *asks, *limit = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO|O:load_snapshot", names, &update_id, &bids, &asks, &limit))
        return NULL;
    Py_ssize_t bid_count, ask_count;
    book_reset(self);
    if (side_load(&self->side[0], bids, &bid_count) < 0 || side_load(&self->side[1], asks, &ask_count) < 0)
        return NULL;
    Py_SETREF(self->update_id, Py_NewRef(update_id));
    int cut = truncated(bid_count, limit);
    if (cut < 0)
        return NULL;
    if (cut && self->side[0].n) /* the deepest bid: the lowest price, the first key */
        Py_SETREF(self->known_bid_edge, PyFloat_FromDouble(self->side[0].key[0]));
    cut = truncated(ask_count, limit);
    if (cut < 0)
        return NULL;
    if (cut && self->side[1].n) /* the deepest ask: the highest price, -(the first key) */
        Py_SETREF(self->known_ask_edge, PyFloat_FromDouble(-self->side[1].key[0]));
    if (self->known_bid_edge == NULL || self->known_ask_edge == NULL) {
        Py_XSETREF(self->known_bid_edge, Py_NewRef(Py_None));
        Py_XSETREF(self->known_ask_edge, Py_NewRef(Py_None));
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
book_apply(Book *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "apply() takes 3 arguments (bids, asks, update_id), %zd given", nargs);
        return NULL;
    }
    for (int s = 0; s < 2; s++) {
        int given = PyObject_IsTrue(args[s]); /* as `if bids:` */
        if (given < 0 || (given && side_apply(&self->side[s], args[s]) < 0))
            return NULL;
    }
    Py_SETREF(self->update_id, Py_NewRef(args[2]));
    Py_RETURN_NONE;
}

static PyObject *
book_crossed(Book *self, PyObject *Py_UNUSED(ignored))
{
    const Side *bid = &self->side[0], *ask = &self->side[1];
    /* an empty side never crosses */
    if (bid->n && ask->n && bid->key[bid->n - 1] >= -ask->key[ask->n - 1])
        Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

static PyObject *
book_touch(Book *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *bid = side_best(&self->side[0]);
    PyObject *ask = bid ? side_best(&self->side[1]) : NULL;
    if (ask == NULL) {
        Py_XDECREF(bid);
        return NULL;
    }
    PyObject *pair = PyTuple_New(2);
    if (pair == NULL) {
        Py_DECREF(bid);
        Py_DECREF(ask);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, bid);
    PyTuple_SET_ITEM(pair, 1, ask);
    return pair;
}

static PyObject *
book_band_notional(Book *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "band_notional() takes 2 arguments (bid_floor, ask_ceiling), %zd given", nargs);
        return NULL;
    }
    double floor = PyFloat_AsDouble(args[0]);
    if (floor == -1.0 && PyErr_Occurred())
        return NULL;
    double ceiling = PyFloat_AsDouble(args[1]);
    if (ceiling == -1.0 && PyErr_Occurred())
        return NULL;
    return Py_BuildValue("(dd)", side_band_notional(&self->side[0], floor),
                         side_band_notional(&self->side[1], ceiling));
}

static PyObject *
levels_of(Book *self, int s)
{
    PyObject *iter = PyType_GenericAlloc(&LevelsType, 0);
    if (iter == NULL)
        return NULL;
    ((Levels *)iter)->book = (Book *)Py_NewRef(self);
    ((Levels *)iter)->side = s;
    ((Levels *)iter)->walked = 0;
    return iter;
}

static PyObject *
book_bids(Book *self, PyObject *Py_UNUSED(ignored))
{
    return levels_of(self, 0);
}

static PyObject *
book_asks(Book *self, PyObject *Py_UNUSED(ignored))
{
    return levels_of(self, 1);
}

static PyObject *
top_of(const Side *side, Py_ssize_t n)
{
    if (n > side->n)
        n = side->n;
    PyObject *list = PyList_New(n);
    if (list == NULL)
        return NULL;
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *pair = level_tuple(side, side->n - 1 - j);
        if (pair == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, j, pair);
    }
    return list;
}

static PyObject *
book_top(Book *self, PyObject *arg)
{
    Py_ssize_t n = PyNumber_AsSsize_t(arg, PyExc_OverflowError);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "top(n) needs n >= 0");
        return NULL;
    }
    PyObject *bids = top_of(&self->side[0], n);
    PyObject *asks = bids ? top_of(&self->side[1], n) : NULL;
    if (asks == NULL) {
        Py_XDECREF(bids);
        return NULL;
    }
    PyObject *pair = PyTuple_New(2);
    if (pair == NULL) {
        Py_DECREF(bids);
        Py_DECREF(asks);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, bids);
    PyTuple_SET_ITEM(pair, 1, asks);
    return pair;
}

static PyObject *
qty_dict(const Side *side)
{
    PyObject *dict = PyDict_New();
    if (dict == NULL)
        return NULL;
    for (Py_ssize_t i = side->n - 1; i >= 0; i--) {
        PyObject *price = PyFloat_FromDouble(side->sign * side->key[i]);
        PyObject *qty = PyFloat_FromDouble(side->qty[i]);
        int failed = price == NULL || qty == NULL || PyDict_SetItem(dict, price, qty) < 0;
        Py_XDECREF(price);
        Py_XDECREF(qty);
        if (failed) {
            Py_DECREF(dict);
            return NULL;
        }
    }
    return dict;
}

static Py_ssize_t
book_length(Book *self)
{
    return self->side[0].n + self->side[1].n;
}

static PyObject *
book_get_bid_qty(Book *self, void *Py_UNUSED(closure))
{
    return qty_dict(&self->side[0]);
}

static PyObject *
book_get_ask_qty(Book *self, void *Py_UNUSED(closure))
{
    return qty_dict(&self->side[1]);
}

static PyObject *
book_get_best_bid(Book *self, void *Py_UNUSED(closure))
{
    return side_best(&self->side[0]);
}

static PyObject *
book_get_best_ask(Book *self, void *Py_UNUSED(closure))
{
    return side_best(&self->side[1]);
}

static PyObject *
book_get_object(Book *self, void *closure)
{
    PyObject *value = *(PyObject **)((char *)self + (Py_ssize_t)closure);
    return Py_NewRef(value);
}

static int
book_set_object(Book *self, PyObject *value, void *closure)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "this attribute cannot be deleted");
        return -1;
    }
    Py_SETREF(*(PyObject **)((char *)self + (Py_ssize_t)closure), Py_NewRef(value));
    return 0;
}

static PyGetSetDef book_getset[] = {
    {"update_id", (getter)book_get_object, (setter)book_set_object, "update id of the last applied event",
     (void *)offsetof(Book, update_id)},
    {"known_bid_edge", (getter)book_get_object, (setter)book_set_object,
     "deepest bid of a truncated snapshot, or None", (void *)offsetof(Book, known_bid_edge)},
    {"known_ask_edge", (getter)book_get_object, (setter)book_set_object,
     "deepest ask of a truncated snapshot, or None", (void *)offsetof(Book, known_ask_edge)},
    {"bid_qty", (getter)book_get_bid_qty, NULL, "{price: qty} of the bids (a copy)", NULL},
    {"ask_qty", (getter)book_get_ask_qty, NULL, "{price: qty} of the asks (a copy)", NULL},
    {"best_bid", (getter)book_get_best_bid, NULL, "best bid price, None when the side is empty", NULL},
    {"best_ask", (getter)book_get_best_ask, NULL, "best ask price, None when the side is empty", NULL},
    {NULL},
};

static PyMethodDef book_methods[] = {
    {"clear", (PyCFunction)book_clear, METH_NOARGS, "Empty the book."},
    {"load_snapshot", (PyCFunction)(void (*)(void))book_load_snapshot, METH_VARARGS | METH_KEYWORDS,
     "load_snapshot(update_id, bids, asks, limit=None): replace the book by a REST snapshot."},
    {"apply", (PyCFunction)(void (*)(void))book_apply, METH_FASTCALL,
     "apply(bids, asks, update_id): set absolute quantities ([price, qty] strings; qty 0 removes)."},
    {"crossed", (PyCFunction)book_crossed, METH_NOARGS, "best bid >= best ask (an empty side never crosses)."},
    {"touch", (PyCFunction)book_touch, METH_NOARGS, "(best bid, best ask), either None when its side is empty."},
    {"band_notional", (PyCFunction)(void (*)(void))book_band_notional, METH_FASTCALL,
     "band_notional(bid_floor, ask_ceiling): (Σ price × qty of bids >= floor, of asks <= ceiling)."},
    {"bids", (PyCFunction)book_bids, METH_NOARGS, "All bid levels as (price, qty), best first (lazy)."},
    {"asks", (PyCFunction)book_asks, METH_NOARGS, "All ask levels as (price, qty), best first (lazy)."},
    {"top", (PyCFunction)book_top, METH_O, "top(n): the best n levels of each side, as two lists."},
    {NULL},
};

static PySequenceMethods book_as_sequence = {
    .sq_length = (lenfunc)book_length,
};

static PyTypeObject BookType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "collectors._book.OrderBook",
    .tp_basicsize = sizeof(Book),
    .tp_dealloc = (destructor)book_dealloc,
    .tp_as_sequence = &book_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The local order book of one market (collectors.book documents it).",
    .tp_methods = book_methods,
    .tp_getset = book_getset,
    .tp_new = book_new,
};

/* ---- a best-first walk of one side ------------------------------------------------------- */

static void
levels_dealloc(Levels *self)
{
    Py_XDECREF(self->book);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
levels_next(Levels *self)
{
    const Side *side = &self->book->side[self->side];
    if (self->walked >= side->n)
        return NULL; /* the book may have changed under the walk: it only ever stops early */
    return level_tuple(side, side->n - 1 - self->walked++);
}

static PyTypeObject LevelsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "collectors._book.Levels",
    .tp_basicsize = sizeof(Levels),
    .tp_dealloc = (destructor)levels_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)levels_next,
};

/* ---- module ------------------------------------------------------------------------------ */

static PyObject *
module_to_float(PyObject *Py_UNUSED(module), PyObject *arg)
{
    double value;
    if (to_double(arg, &value) < 0)
        return NULL;
    return PyFloat_FromDouble(value);
}

static PyMethodDef module_methods[] = {
    {"to_float", module_to_float, METH_O, "float(text), as the book parses prices and quantities (for tests)."},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "collectors._book",
    .m_doc = "The local order book, compiled (collectors/_book.c; the reference is collectors.book.PyOrderBook).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__book(void)
{
    if (PyType_Ready(&BookType) < 0 || PyType_Ready(&LevelsType) < 0)
        return NULL;
    ZERO = PyLong_FromLong(0);
    ONE = PyLong_FromLong(1);
    if (ZERO == NULL || ONE == NULL)
        return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "OrderBook", (PyObject *)&BookType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
