/*
 * _bpecount: count the tokens of o200k_base and cl100k_base exactly as bpe_openai 0.1.4's
 * count() does (which is what tiktoken's encode_ordinary gives), with compact tables.
 *
 * Two parts:
 *
 *  1. A pre-tokenizer: a hand-written scanner for each encoding's split pattern (below),
 *     following the regex's leftmost-first alternation semantics, over the code points of the
 *     str itself (no UTF-8 copy of the whole text is made or cached on the str).
 *  2. Byte pair encoding of each piece with tiktoken's merge rule: merge the adjacent pair of
 *     lowest rank (the leftmost on ties) until no pair is a token. Short pieces use tiktoken's
 *     quadratic loop over an array; long ones a tournament tree over a linked list (O(n log n)).
 *
 * The ranks come from a rank file (base64 token, space, rank, per line), parsed here into one
 * byte blob (each token with its length and rank), an open-addressing hash table of uint32
 * (blob offset and a hash tag), a one-bit-per-hash filter and a direct table of the two-byte
 * tokens: 3.6 MB for o200k_base and 1.9 MB for cl100k_base.
 *
 * Everything here runs on untrusted text: every index is checked against its bound.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_bpecount_unicode.h"

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#endif

#define NO_RANK UINT32_MAX
#define SMALL_PIECE 64            /* bytes: pieces up to this use the array loop */
#define MAX_PIECE 0x3FFFFFFF      /* bytes: longer pieces are refused (ValueError) */
#define RELEASE_GIL_CHARS 4096    /* texts at least this long are counted without the GIL */

enum { PAT_O200K = 0, PAT_CL100K = 1 };
enum { OK = 0, ERR_MEMORY = -1, ERR_SURROGATE = -2, ERR_TOO_LONG = -3, ERR_BAD_TABLE = -4 };

/* ---------------------------------------------------------------- memory */

/* Large blocks (the tables, the rank file's scratch, a long piece's work arrays) are mapped
   straight from the kernel and unmapped when freed, so none of them is left behind as a hole in
   malloc's heap that the process cannot hand back (4.5 MB of RSS when the tables came from
   malloc). Small ones come from malloc. The block's size is kept in a 16-byte header. */
#define BIG_BLOCK (256 * 1024)

static void *big_alloc(size_t size)
{
    if (size > SIZE_MAX - 16)
        return NULL;
    size_t total = size + 16;
    void *p = NULL;
#ifdef MAP_ANONYMOUS
    if (total >= BIG_BLOCK) {
        p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
    } else
#endif
        p = PyMem_RawMalloc(total);
    if (p == NULL)
        return NULL;
    *(size_t *)p = total;
    return (char *)p + 16;
}

static void big_free(void *q)
{
    if (q == NULL)
        return;
    char *p = (char *)q - 16;
    size_t total = *(size_t *)p;
#ifdef MAP_ANONYMOUS
    if (total >= BIG_BLOCK) {
        munmap(p, total);
        return;
    }
#endif
    PyMem_RawFree(p);
}

static void *big_array(size_t count, size_t size, int zeroed)
{
    if (size && count > (SIZE_MAX - 16) / size)
        return NULL;
    void *p = big_alloc(count * size);
    if (p && zeroed)
        memset(p, 0, count * size);
    return p;
}

/* ---------------------------------------------------------------- Unicode classes */

/* The class of every BMP code point, filled from the range table when the module loads (64 KB:
   one load instead of a binary search for most text). */
static uint8_t bmp_class[0x10000];

static void fill_bmp_classes(void)
{
    for (size_t r = 0; r < UCD_RANGES; r++) {
        uint32_t lo = ucd_ranges[r] >> 8;
        uint32_t hi = r + 1 < UCD_RANGES ? ucd_ranges[r + 1] >> 8 : 0x110000;
        for (uint32_t c = lo; c < hi && c < 0x10000; c++)
            bmp_class[c] = (uint8_t)(ucd_ranges[r] & 0xFF);
    }
}

static inline int ucd_class(Py_UCS4 c)
{
    if (c < 0x10000)
        return bmp_class[c];
    if (c > 0x10FFFF)
        return C_OTHER;
    /* the last entry whose start is <= c */
    size_t lo = 0, hi = UCD_RANGES;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((ucd_ranges[mid] >> 8) <= c)
            lo = mid;
        else
            hi = mid;
    }
    return (int)(ucd_ranges[lo] & 0xFF);
}

/* \p{L} */
static inline int is_letter(int k) { return k == C_UPPER || k == C_LOWER || k == C_LETTER_OTHER; }
/* o200k's [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] */
static inline int is_upperish(int k) { return k == C_UPPER || k == C_LETTER_OTHER || k == C_MARK; }
/* o200k's [\p{Ll}\p{Lm}\p{Lo}\p{M}] */
static inline int is_lowerish(int k) { return k == C_LOWER || k == C_LETTER_OTHER || k == C_MARK; }
/* [^\s\p{L}\p{N}] */
static inline int is_punct(int k) { return k == C_OTHER || k == C_MARK; }

/* ---------------------------------------------------------------- the text */

typedef struct {
    int kind;           /* PyUnicode_KIND */
    const void *data;   /* PyUnicode_DATA */
    Py_ssize_t n;       /* code points */
} Text;

static inline Py_UCS4 cp_at(const Text *t, Py_ssize_t i) { return PyUnicode_READ(t->kind, t->data, i); }
static inline int cls_at(const Text *t, Py_ssize_t i) { return ucd_class(cp_at(t, i)); }

/* [^\r\n\p{L}\p{N}] */
static inline int is_prefix(const Text *t, Py_ssize_t i)
{
    Py_UCS4 c = cp_at(t, i);
    int k = ucd_class(c);
    return c != '\r' && c != '\n' && !is_letter(k) && k != C_NUMBER;
}

/* Rust regex's simple case folding: (?i)s also matches U+017F (long s); no other non-ASCII
   code point folds to d, e, l, m, r, t or v. */
static inline Py_UCS4 fold(Py_UCS4 c)
{
    if (c >= 'A' && c <= 'Z')
        return c + 32;
    if (c == 0x17F)
        return 's';
    return c;
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d) at i: the end of the match, or -1. */
static Py_ssize_t contraction(const Text *t, Py_ssize_t i)
{
    if (i + 1 >= t->n || cp_at(t, i) != '\'')
        return -1;
    Py_UCS4 a = fold(cp_at(t, i + 1));
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return i + 2;
    if (i + 2 >= t->n)
        return -1;
    Py_UCS4 b = fold(cp_at(t, i + 2));
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        return i + 3;
    return -1;
}

static inline Py_ssize_t optional_contraction(const Text *t, Py_ssize_t e)
{
    Py_ssize_t c = contraction(t, e);
    return c < 0 ? e : c;
}

/* o200k: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:...)? from s, or -1.
   The greedy star backtracks to the last position j at or before the end of its run where the
   plus can start; the plus then runs greedily from j. */
static Py_ssize_t o200k_lower_word(const Text *t, Py_ssize_t s)
{
    Py_ssize_t u = s;
    while (u < t->n && is_upperish(cls_at(t, u)))
        u++;
    Py_ssize_t j = u;
    if (!(j < t->n && is_lowerish(cls_at(t, j)))) {
        j = u - 1;
        while (j >= s && !is_lowerish(cls_at(t, j)))
            j--;
        if (j < s)
            return -1;
    }
    Py_ssize_t e = j;
    while (e < t->n && is_lowerish(cls_at(t, e)))
        e++;
    return optional_contraction(t, e);
}

/* o200k: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:...)? from s, or -1. */
static Py_ssize_t o200k_upper_word(const Text *t, Py_ssize_t s)
{
    Py_ssize_t u = s;
    while (u < t->n && is_upperish(cls_at(t, u)))
        u++;
    if (u == s)
        return -1;
    while (u < t->n && is_lowerish(cls_at(t, u)))
        u++;
    return optional_contraction(t, u);
}

/* \s*[\r\n]+ | \s+(?!\S) | \s+ at i (a white space code point). */
static Py_ssize_t spaces(const Text *t, Py_ssize_t i)
{
    Py_ssize_t w = i, last_newline = -1;
    while (w < t->n) {
        Py_UCS4 c = cp_at(t, w);
        if (ucd_class(c) != C_SPACE)
            break;
        if (c == '\r' || c == '\n')
            last_newline = w;
        w++;
    }
    if (last_newline >= 0)
        return last_newline + 1;  /* \s* backtracks to the last newline, [\r\n]+ takes it */
    if (w == t->n || w - i < 2)
        return w;                 /* \s+(?!\S) at the end, or the single \s+ */
    return w - 1;                 /* \s+(?!\S): leave the last space to the next piece */
}

/*  ?[^\s\p{L}\p{N}]+[\r\n/]* (o200k; cl100k's tail is [\r\n]*) at i, or -1. */
static Py_ssize_t punctuation(const Text *t, Py_ssize_t i, int slash)
{
    Py_ssize_t s = i;
    if (cp_at(t, s) == ' ' && s + 1 < t->n && is_punct(cls_at(t, s + 1)))
        s++;
    if (!is_punct(cls_at(t, s)))
        return -1;
    while (s < t->n && is_punct(cls_at(t, s)))
        s++;
    while (s < t->n) {
        Py_UCS4 c = cp_at(t, s);
        if (!(c == '\r' || c == '\n' || (slash && c == '/')))
            break;
        s++;
    }
    return s;
}

static Py_ssize_t digits(const Text *t, Py_ssize_t i)
{
    Py_ssize_t e = i;
    while (e < t->n && e - i < 3 && cls_at(t, e) == C_NUMBER)
        e++;
    return e;
}

/* The end of the o200k_base piece starting at i (< t->n); always > i. The pattern:
   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|...)?
   |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|...)?
   |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static Py_ssize_t o200k_next(const Text *t, Py_ssize_t i)
{
    int k = cls_at(t, i);
    int prefix = is_prefix(t, i) && i + 1 < t->n;
    Py_ssize_t e;
    if (prefix && (e = o200k_lower_word(t, i + 1)) >= 0)
        return e;
    if ((e = o200k_lower_word(t, i)) >= 0)
        return e;
    if (prefix && (e = o200k_upper_word(t, i + 1)) >= 0)
        return e;
    if ((e = o200k_upper_word(t, i)) >= 0)
        return e;
    if (k == C_NUMBER)
        return digits(t, i);
    if ((e = punctuation(t, i, 1)) >= 0)
        return e;
    if (k == C_SPACE)
        return spaces(t, i);
    return i + 1;  /* unreachable: every class is matched above */
}

/* The end of the cl100k_base piece starting at i (< t->n); always > i. The pattern:
   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*
   |\s*[\r\n]+|\s+(?!\S)|\s+ */
static Py_ssize_t cl100k_next(const Text *t, Py_ssize_t i)
{
    int k = cls_at(t, i);
    Py_ssize_t e = contraction(t, i);
    if (e >= 0)
        return e;
    Py_ssize_t s = i;
    if (!is_letter(k) && is_prefix(t, i) && i + 1 < t->n && is_letter(cls_at(t, i + 1)))
        s = i + 1;
    if (is_letter(cls_at(t, s))) {
        while (s < t->n && is_letter(cls_at(t, s)))
            s++;
        return s;
    }
    if (k == C_NUMBER)
        return digits(t, i);
    if ((e = punctuation(t, i, 0)) >= 0)
        return e;
    if (k == C_SPACE)
        return spaces(t, i);
    return i + 1;  /* unreachable */
}

/* ---------------------------------------------------------------- the rank table */

/* Each token is kept once in the blob as [length: 1 byte][rank: 3 bytes, little-endian][bytes].
   A slot of the hash table holds (blob offset + 1) << tag_bits | tag, 0 for an empty slot, where
   the tag is the low bits of the token's hash: a probe whose tag differs never touches the blob,
   so a pair that is not a token costs one memory access and one that is costs two. */
typedef struct {
    PyObject_HEAD
    int pattern;
    uint32_t max_len;     /* the longest token, in bytes (at most 255) */
    uint8_t *blob;
    uint32_t *slots;
    uint64_t *filter;     /* one bit per hash, set for every token: most byte strings that are
                             no token are turned away here, in a table small enough to stay in
                             the CPU's cache (the slots are not) */
    uint32_t filter_mask; /* bits - 1 (a power of two) */
    uint32_t *pairs;      /* 65536: the rank of each two-byte token, NO_RANK if none (the
                             lookups of a piece's first round, most of them for CJK text) */
    uint32_t mask;        /* slots - 1 (a power of two) */
    int tag_bits;
    uint32_t tag_mask;
    size_t table_bytes;
} Encoder;

#define TOKEN_HEADER 4
#define MAX_RANK 0xFFFFFF

static inline uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = (uint64_t)n * 0x9E3779B97F4A7C15ull;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0x94D049BB133111EBull;
        h ^= h >> 31;
    }
    return h * 0x9E3779B97F4A7C15ull;
}

/* The rank of the token p[0:n], or NO_RANK. */
static inline uint32_t lookup(const Encoder *e, const uint8_t *p, size_t n)
{
    if (n == 2 && e->pairs)
        return e->pairs[(uint32_t)p[0] << 8 | p[1]];
    if (n == 0 || n > e->max_len)
        return NO_RANK;
    uint64_t h = hash_bytes(p, n);
    uint32_t bit = (uint32_t)(h >> 11) & e->filter_mask;
    if (!(e->filter[bit >> 6] >> (bit & 63) & 1))
        return NO_RANK;
    size_t i = (size_t)(h >> 32) & e->mask;
    uint32_t tag = (uint32_t)h & e->tag_mask;
    for (;;) {
        uint32_t v = e->slots[i];
        if (v == 0)
            return NO_RANK;
        if ((v & e->tag_mask) == tag) {
            const uint8_t *t = e->blob + ((v >> e->tag_bits) - 1);
            if (t[0] == n && memcmp(t + TOKEN_HEADER, p, n) == 0)
                return (uint32_t)t[1] | (uint32_t)t[2] << 8 | (uint32_t)t[3] << 16;
        }
        i = (i + 1) & e->mask;
    }
}

static int b64_value(uint8_t c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decode standard base64 src[0:n] into dst (room for n * 3 / 4 bytes); -1 if malformed. */
static Py_ssize_t b64_decode(const uint8_t *src, size_t n, uint8_t *dst)
{
    if (n == 0 || n % 4)
        return -1;
    size_t out = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            if (src[i + j] == '=' && i + 4 == n && j >= 2) {
                v[j] = 0;
                pad++;
            } else {
                if (pad)  /* '=' then a letter */
                    return -1;
                v[j] = b64_value(src[i + j]);
                if (v[j] < 0)
                    return -1;
            }
        }
        uint32_t x = (uint32_t)(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
        dst[out++] = (uint8_t)(x >> 16);
        if (pad < 2)
            dst[out++] = (uint8_t)(x >> 8);
        if (pad < 1)
            dst[out++] = (uint8_t)x;
    }
    return (Py_ssize_t)out;
}

/* Parse the rank file into the encoder's tables; sets a Python error and returns -1 on error. */
static int load_ranks(Encoder *self, const uint8_t *src, size_t size)
{
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += src[i] == '\n';
    if (size > 0x3FFFFFFF) {
        PyErr_SetString(PyExc_ValueError, "rank file too large");
        return -1;
    }
    /* the blob holds at most a header per line and 3 bytes per 4 of base64 */
    size_t cap = lines * TOKEN_HEADER + size / 4 * 3 + 4;
    uint8_t *seen = big_array(MAX_RANK + 1, 1, 1);  /* ranks given so far */
    self->blob = big_array(cap, 1, 0);
    int status = -1;
    const char *why = NULL;
    if (!seen || !self->blob) {
        PyErr_NoMemory();
        goto done;
    }
    size_t count = 0, used = 0, pos = 0;
    uint32_t max_len = 0;
    while (pos < size) {
        size_t end = pos;
        while (end < size && src[end] != '\n')
            end++;
        size_t line_end = end;
        if (line_end > pos && src[line_end - 1] == '\r')
            line_end--;
        if (line_end > pos) {
            size_t sp = pos;
            while (sp < line_end && src[sp] != ' ')
                sp++;
            if (sp == line_end || sp + 1 == line_end) {
                why = "a line without a rank";
                goto bad;
            }
            uint32_t r = 0;
            for (size_t i = sp + 1; i < line_end; i++) {
                if (src[i] < '0' || src[i] > '9' || r > MAX_RANK) {
                    why = "a bad rank";
                    goto bad;
                }
                r = r * 10 + (uint32_t)(src[i] - '0');
            }
            if (r > MAX_RANK) {
                why = "a rank above 2**24 - 1";
                goto bad;
            }
            if (seen[r]) {
                why = "a rank given twice";
                goto bad;
            }
            seen[r] = 1;
            if ((sp - pos) / 4 * 3 > 255 + 3) {
                why = "a token longer than 255 bytes";
                goto bad;
            }
            uint8_t *t = self->blob + used;
            Py_ssize_t got = b64_decode(src + pos, sp - pos, t + TOKEN_HEADER);
            if (got <= 0 || got > 255) {
                why = got > 255 ? "a token longer than 255 bytes" : "bad base64";
                goto bad;
            }
            t[0] = (uint8_t)got;
            t[1] = (uint8_t)r;
            t[2] = (uint8_t)(r >> 8);
            t[3] = (uint8_t)(r >> 16);
            used += TOKEN_HEADER + (size_t)got;
            if ((uint32_t)got > max_len)
                max_len = (uint32_t)got;
            count++;
        }
        pos = end + 1;
    }
    if (count == 0) {
        why = "no tokens";
        goto bad;
    }
    /* the slots: (offset + 1) in the high bits, a tag in the low ones */
    int offset_bits = 1;
    while (offset_bits < 32 && ((uint64_t)1 << offset_bits) <= used + 1)
        offset_bits++;
    uint32_t n_slots = 1;  /* filled to at most 80 %: the probes after the first are mostly in
                              the same cache line, and the filter spares most lookups of what
                              is no token */
    while ((uint64_t)n_slots * 4 / 5 < count)
        n_slots <<= 1;
    uint32_t filter_bits = 64;
    while (filter_bits < 8 * (uint64_t)count)
        filter_bits <<= 1;
    self->slots = big_array(n_slots, sizeof(uint32_t), 1);
    self->filter = big_array(filter_bits / 64, sizeof(uint64_t), 1);
    self->filter_mask = filter_bits - 1;
    if (!self->slots || !self->filter) {
        PyErr_NoMemory();
        goto done;
    }
    self->tag_bits = 32 - offset_bits;  /* >= 2: the blob is at most about 1.75 GB */
    self->tag_mask = ((uint32_t)1 << self->tag_bits) - 1;
    self->mask = n_slots - 1;
    self->max_len = max_len;
    for (size_t off = 0; off < used; off += TOKEN_HEADER + self->blob[off]) {
        const uint8_t *tok = self->blob + off + TOKEN_HEADER;
        size_t n = self->blob[off];
        if (lookup(self, tok, n) != NO_RANK) {
            why = "a token given twice";
            goto bad;
        }
        uint64_t h = hash_bytes(tok, n);
        uint32_t bit = (uint32_t)(h >> 11) & self->filter_mask;
        self->filter[bit >> 6] |= (uint64_t)1 << (bit & 63);
        size_t i = (size_t)(h >> 32) & self->mask;
        while (self->slots[i])
            i = (i + 1) & self->mask;
        self->slots[i] = (uint32_t)(off + 1) << self->tag_bits | ((uint32_t)h & self->tag_mask);
    }
    uint32_t *pairs = big_array(65536, sizeof(uint32_t), 0);
    if (!pairs) {
        PyErr_NoMemory();
        goto done;
    }
    for (uint32_t i = 0; i < 65536; i++) {  /* through the hash table: self->pairs is NULL */
        uint8_t two[2] = {(uint8_t)(i >> 8), (uint8_t)i};
        pairs[i] = lookup(self, two, 2);
    }
    self->pairs = pairs;
    /* give back the blob's unused tail (it was sized for the worst case) */
    uint8_t *exact = big_array(used, 1, 0);
    if (!exact) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(exact, self->blob, used);
    big_free(self->blob);
    self->blob = exact;
    self->table_bytes = used + (size_t)n_slots * 4 + filter_bits / 8 + 65536 * 4;
    status = 0;
    goto done;
bad:
    PyErr_Format(PyExc_ValueError, "malformed rank file: %s", why);
done:
    if (status < 0) {  /* leave no half-built table behind (check_ready looks at blob) */
        big_free(self->blob);
        big_free(self->slots);
        big_free(self->filter);
        big_free(self->pairs);
        self->blob = NULL;
        self->slots = NULL;
        self->filter = NULL;
        self->pairs = NULL;
    }
    big_free(seen);
    return status;
}

/* ---------------------------------------------------------------- byte pair encoding */

/* tiktoken's loop for a short piece: parts[i] starts a part, rank[i] is the rank of the pair
   parts i and i+1 would make. Returns the number of tokens. */
static Py_ssize_t bpe_small(const Encoder *e, const uint8_t *p, uint32_t n)
{
    uint32_t start[SMALL_PIECE + 1], rank[SMALL_PIECE + 1];
    uint32_t m = n + 1;  /* parts, counting the end marker */
    for (uint32_t i = 0; i < m; i++) {
        start[i] = i;
        rank[i] = i + 2 <= n ? lookup(e, p + i, 2) : NO_RANK;
    }
    for (;;) {
        uint32_t best = NO_RANK, at = 0;
        for (uint32_t i = 0; i + 1 < m; i++) {
            if (rank[i] < best) {
                best = rank[i];
                at = i;
            }
        }
        if (best == NO_RANK)
            break;
        /* merge parts at and at+1 (at + 2 < m: part at+1 is not the end marker); the pairs
           that change start at at-1 and at */
        if (at > 0)
            rank[at - 1] = lookup(e, p + start[at - 1], start[at + 2] - start[at - 1]);
        rank[at] = at + 3 < m ? lookup(e, p + start[at], start[at + 3] - start[at]) : NO_RANK;
        memmove(start + at + 1, start + at + 2, (m - at - 2) * sizeof(uint32_t));
        memmove(rank + at + 1, rank + at + 2, (m - at - 2) * sizeof(uint32_t));
        m--;
    }
    return (Py_ssize_t)m - 1;
}

/* A per-call cache of pair lookups for long pieces: every part is a token, so the bytes of a
   pair are fixed by the ranks of its two parts, and a long piece asks for the same pairs again
   and again ('a' * 100000 asks for few others): one direct-mapped slot per hash. */
typedef struct {
    uint32_t left, right, merged;  /* left == NO_RANK: empty */
} PairSlot;

static inline uint32_t pair_rank(const Encoder *e, PairSlot *cache, uint32_t cache_mask,
                                 const uint32_t *token, const uint8_t *p, uint32_t at,
                                 uint32_t mid, uint32_t end)
{
    uint32_t a = token[at], b = token[mid];
    PairSlot *slot = &cache[(uint32_t)(((uint64_t)a * 0x9E3779B1u ^ (uint64_t)b * 0x85EBCA77u) >> 7)
                           & cache_mask];
    if (slot->left == a && slot->right == b)
        return slot->merged;
    uint32_t r = lookup(e, p + at, end - at);
    slot->left = a;
    slot->right = b;
    slot->merged = r;
    return r;
}

/* A tournament tree over the parts' start bytes: leaf i holds (rank << 32 | i) of the pair
   starting at i (or NO_PAIR), each inner node the least of its two children, so the root is the
   pair to merge next: the lowest rank, the leftmost on ties. */
#define NO_PAIR UINT64_MAX

static inline void tree_set(uint64_t *tree, size_t leaves, uint32_t i, uint64_t key)
{
    size_t k = leaves + i;
    tree[k] = key;
    for (k >>= 1; k >= 1; k >>= 1) {
        uint64_t a = tree[2 * k], b = tree[2 * k + 1];
        uint64_t least = a < b ? a : b;
        if (tree[k] == least)
            break;  /* the ancestors are unchanged */
        tree[k] = least;
    }
}

/* The same merges for a long piece: parts as a linked list over their start bytes, the pending
   pairs in a tournament tree (O(n log n); no stale entries to skip). Returns the number of
   tokens, or a negative error code. */
static Py_ssize_t bpe_large(const Encoder *e, const uint8_t *p, uint32_t n)
{
    size_t leaves = 1;
    while (leaves < n)
        leaves <<= 1;
    uint32_t *next = big_array(n, sizeof(uint32_t), 0);
    uint32_t *prev = big_array(n, sizeof(uint32_t), 0);
    uint32_t *token = big_array(n, sizeof(uint32_t), 0);  /* of the part at i */
    uint64_t *tree = big_array(2 * leaves, sizeof(uint64_t), 0);
    uint32_t cache_size = 256;
    while (cache_size < 4096 && cache_size < n)
        cache_size <<= 1;
    PairSlot *cache = big_array(cache_size, sizeof(PairSlot), 0);
    uint32_t cm = cache_size - 1;
    Py_ssize_t tokens = ERR_MEMORY;
    if (!next || !prev || !token || !tree || !cache)
        goto done;
    for (uint32_t i = 0; i < cache_size; i++)
        cache[i].left = NO_RANK;
    for (uint32_t i = 0; i < n; i++) {
        token[i] = lookup(e, p + i, 1);
        if (token[i] == NO_RANK) {  /* every byte is a token in these encodings */
            tokens = ERR_BAD_TABLE;
            goto done;
        }
    }
    for (size_t k = 0; k < leaves; k++) {
        uint64_t key = NO_PAIR;
        if (k + 1 < n) {
            uint32_t i = (uint32_t)k;
            uint32_t r = pair_rank(e, cache, cm, token, p, i, i + 1, i + 2);
            if (r != NO_RANK)
                key = (uint64_t)r << 32 | i;
        }
        tree[leaves + k] = key;
    }
    for (size_t k = leaves - 1; k >= 1; k--)
        tree[k] = tree[2 * k] < tree[2 * k + 1] ? tree[2 * k] : tree[2 * k + 1];
    for (uint32_t i = 0; i < n; i++) {
        next[i] = i + 1;
        prev[i] = i ? i - 1 : NO_RANK;
    }
    tokens = n;
    while (tree[1] != NO_PAIR) {
        uint32_t i = (uint32_t)tree[1], r = (uint32_t)(tree[1] >> 32);
        uint32_t j = next[i];  /* merge part j into part i */
        next[i] = next[j];
        if (next[j] < n)
            prev[next[j]] = i;
        token[i] = r;
        tokens--;
        tree_set(tree, leaves, j, NO_PAIR);
        uint32_t after = next[i];
        uint32_t ri = after < n ? pair_rank(e, cache, cm, token, p, i, after, next[after]) : NO_RANK;
        tree_set(tree, leaves, i, ri == NO_RANK ? NO_PAIR : (uint64_t)ri << 32 | i);
        uint32_t h = prev[i];
        if (h != NO_RANK) {
            uint32_t rh = pair_rank(e, cache, cm, token, p, h, i, next[i]);
            tree_set(tree, leaves, h, rh == NO_RANK ? NO_PAIR : (uint64_t)rh << 32 | h);
        }
    }
done:
    big_free(next);
    big_free(prev);
    big_free(token);
    big_free(tree);
    big_free(cache);
    return tokens;
}

static Py_ssize_t bpe_count(const Encoder *e, const uint8_t *p, size_t n)
{
    if (n <= 1)
        return (Py_ssize_t)n;  /* every single byte is a token */
    if (n > MAX_PIECE)
        return ERR_TOO_LONG;
    if (lookup(e, p, n) != NO_RANK)
        return 1;
    if (n <= SMALL_PIECE)
        return bpe_small(e, p, (uint32_t)n);
    return bpe_large(e, p, (uint32_t)n);
}

/* ---------------------------------------------------------------- counting a text */

typedef struct {
    uint8_t *buf;       /* UTF-8 of the current piece */
    size_t cap;
    uint8_t local[1024];
} PieceBuffer;

/* UTF-8 of t[s:e] into b->buf; its length, or ERR_MEMORY / ERR_SURROGATE. */
static Py_ssize_t encode_piece(const Text *t, Py_ssize_t s, Py_ssize_t e, PieceBuffer *b)
{
    size_t need = (size_t)(e - s) * 4;
    if (need > b->cap) {
        uint8_t *bigger = big_alloc(need);
        if (!bigger)
            return ERR_MEMORY;
        if (b->buf != b->local)
            big_free(b->buf);
        b->buf = bigger;
        b->cap = need;
    }
    uint8_t *o = b->buf;
    for (Py_ssize_t i = s; i < e; i++) {
        Py_UCS4 c = cp_at(t, i);
        if (c < 0x80) {
            *o++ = (uint8_t)c;
        } else if (c < 0x800) {
            *o++ = (uint8_t)(0xC0 | c >> 6);
            *o++ = (uint8_t)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            if (c >= 0xD800 && c <= 0xDFFF)
                return ERR_SURROGATE;
            *o++ = (uint8_t)(0xE0 | c >> 12);
            *o++ = (uint8_t)(0x80 | (c >> 6 & 0x3F));
            *o++ = (uint8_t)(0x80 | (c & 0x3F));
        } else {
            *o++ = (uint8_t)(0xF0 | c >> 18);
            *o++ = (uint8_t)(0x80 | (c >> 12 & 0x3F));
            *o++ = (uint8_t)(0x80 | (c >> 6 & 0x3F));
            *o++ = (uint8_t)(0x80 | (c & 0x3F));
        }
    }
    return o - b->buf;
}

static inline Py_ssize_t next_piece(const Encoder *e, const Text *t, Py_ssize_t i)
{
    return e->pattern == PAT_O200K ? o200k_next(t, i) : cl100k_next(t, i);
}

/* The tokens of the whole text, or a negative error code. */
static Py_ssize_t count_text(const Encoder *e, const Text *t, int ascii)
{
    PieceBuffer b;
    b.buf = b.local;
    b.cap = sizeof b.local;
    Py_ssize_t total = 0, i = 0;
    while (i < t->n) {
        Py_ssize_t end = next_piece(e, t, i);
        if (end <= i || end > t->n)  /* cannot happen; never loop forever or read past */
            end = i + 1;
        Py_ssize_t got;
        if (ascii) {  /* the str's own bytes are the UTF-8 */
            got = bpe_count(e, (const uint8_t *)t->data + i, (size_t)(end - i));
        } else {
            Py_ssize_t n = encode_piece(t, i, end, &b);
            got = n < 0 ? n : bpe_count(e, b.buf, (size_t)n);
        }
        if (got < 0) {
            total = got;
            break;
        }
        total += got;
        i = end;
    }
    if (b.buf != b.local)
        big_free(b.buf);
    return total;
}

static int read_text(PyObject *arg, Text *t)
{
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "expected str, not %.100s", Py_TYPE(arg)->tp_name);
        return -1;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(arg) < 0)  /* a no-op, deprecated, from 3.12 */
        return -1;
#endif
    t->kind = PyUnicode_KIND(arg);
    t->data = PyUnicode_DATA(arg);
    t->n = PyUnicode_GET_LENGTH(arg);
    return 0;
}

static PyObject *raise_code(PyObject *text, Py_ssize_t code)
{
    if (code == ERR_SURROGATE) {
        /* the same UnicodeEncodeError bpe_openai raises (it encodes the str to UTF-8) */
        PyObject *b = PyUnicode_AsUTF8String(text);
        if (b == NULL)
            return NULL;
        Py_DECREF(b);
        PyErr_SetString(PyExc_ValueError, "surrogates not allowed");
        return NULL;
    }
    if (code == ERR_BAD_TABLE) {
        PyErr_SetString(PyExc_ValueError, "the rank file lacks a single-byte token");
        return NULL;
    }
    if (code == ERR_TOO_LONG) {
        PyErr_SetString(PyExc_ValueError, "a piece of text too long to count");
        return NULL;
    }
    return PyErr_NoMemory();
}

static PyObject *Encoder_count(Encoder *self, PyObject *arg)
{
    Text t;
    if (read_text(arg, &t) < 0)
        return NULL;
    int ascii = PyUnicode_IS_ASCII(arg);
    Py_ssize_t total;
    if (t.n >= RELEASE_GIL_CHARS) {
        Py_BEGIN_ALLOW_THREADS
        total = count_text(self, &t, ascii);
        Py_END_ALLOW_THREADS
    } else {
        total = count_text(self, &t, ascii);
    }
    if (total < 0)
        return raise_code(arg, total);
    return PyLong_FromSsize_t(total);
}

/* The pieces of a text, as strs (for tests: compared with bpe_openai's pretokenize()). */
static PyObject *Encoder_pretokenize(Encoder *self, PyObject *arg)
{
    Text t;
    if (read_text(arg, &t) < 0)
        return NULL;
    PyObject *out = PyList_New(0);
    Py_ssize_t i = 0;
    while (out && i < t.n) {
        Py_ssize_t end = next_piece(self, &t, i);
        if (end <= i || end > t.n)
            end = i + 1;
        PyObject *piece = PyUnicode_Substring(arg, i, end);
        if (!piece || PyList_Append(out, piece) < 0)
            Py_CLEAR(out);
        Py_XDECREF(piece);
        i = end;
    }
    return out;
}

/* The rank of a token given as bytes, or None (for tests). */
static PyObject *Encoder_rank(Encoder *self, PyObject *arg)
{
    char *p;
    Py_ssize_t n;
    if (PyBytes_AsStringAndSize(arg, &p, &n) < 0)
        return NULL;
    uint32_t r = lookup(self, (const uint8_t *)p, (size_t)n);
    if (r == NO_RANK)
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLong(r);
}

static int Encoder_init(Encoder *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ranks", "pattern", NULL};
    Py_buffer ranks;
    const char *pattern;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*s", kwlist, &ranks, &pattern))
        return -1;
    int status = -1;
    if (self->blob) {
        PyErr_SetString(PyExc_RuntimeError, "Encoder already initialised");
    } else if (strcmp(pattern, "o200k_base") == 0 || strcmp(pattern, "cl100k_base") == 0) {
        self->pattern = pattern[0] == 'o' ? PAT_O200K : PAT_CL100K;
        status = load_ranks(self, ranks.buf, (size_t)ranks.len);
    } else {
        PyErr_Format(PyExc_ValueError, "no split pattern for %s", pattern);
    }
    PyBuffer_Release(&ranks);
    return status;
}

static PyObject *Encoder_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Encoder *self = (Encoder *)type->tp_alloc(type, 0);  /* zeroed */
    return (PyObject *)self;
}

static void Encoder_dealloc(Encoder *self)
{
    big_free(self->blob);
    big_free(self->slots);
    big_free(self->filter);
    big_free(self->pairs);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int check_ready(Encoder *self)
{
    if (self->blob)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "Encoder not initialised");
    return -1;
}

static PyObject *Encoder_count_checked(Encoder *self, PyObject *arg)
{
    return check_ready(self) < 0 ? NULL : Encoder_count(self, arg);
}

static PyObject *Encoder_pretokenize_checked(Encoder *self, PyObject *arg)
{
    return check_ready(self) < 0 ? NULL : Encoder_pretokenize(self, arg);
}

static PyObject *Encoder_rank_checked(Encoder *self, PyObject *arg)
{
    return check_ready(self) < 0 ? NULL : Encoder_rank(self, arg);
}

static PyObject *Encoder_table_bytes(Encoder *self, void *closure)
{
    return PyLong_FromSize_t(self->table_bytes);
}

static PyMethodDef Encoder_methods[] = {
    {"count", (PyCFunction)Encoder_count_checked, METH_O, "count(text) -> number of tokens"},
    {"pretokenize", (PyCFunction)Encoder_pretokenize_checked, METH_O,
     "pretokenize(text) -> the pieces the split pattern cuts the text into"},
    {"rank", (PyCFunction)Encoder_rank_checked, METH_O, "rank(token: bytes) -> int or None"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Encoder_getset[] = {
    {"table_bytes", (getter)Encoder_table_bytes, NULL, "bytes allocated for the tables", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject EncoderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "farebox.billing._bpecount.Encoder",
    .tp_doc = "Encoder(ranks: bytes, pattern: 'o200k_base' | 'cl100k_base'): a token counter",
    .tp_basicsize = sizeof(Encoder),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Encoder_new,
    .tp_init = (initproc)Encoder_init,
    .tp_dealloc = (destructor)Encoder_dealloc,
    .tp_methods = Encoder_methods,
    .tp_getset = Encoder_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "farebox.billing._bpecount",
    .m_doc = "Exact token counts for o200k_base and cl100k_base with compact tables.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__bpecount(void)
{
    fill_bmp_classes();
    if (PyType_Ready(&EncoderType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&EncoderType);
    if (PyModule_AddObject(m, "Encoder", (PyObject *)&EncoderType) < 0
        || PyModule_AddStringConstant(m, "UNICODE_VERSION", "16.0.0") < 0) {
        Py_DECREF(&EncoderType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
