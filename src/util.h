/* util.h - error idiom, allocation that aborts on exhaustion, small helpers.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * One error idiom everywhere: a function that can fail returns 0 on success
 * and -1 on failure and, when given a non-NULL struct ph_error *, fills it
 * with one human-readable line ("open(/x) failed: Permission denied").
 * Functions returning an HTTP status say so in their header comment.
 */
#ifndef PH_UTIL_H
#define PH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PH_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define PH_NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))
#define PH_MALLOC __attribute__((malloc, returns_nonnull))
#define PH_NORETURN __attribute__((noreturn))
#define PH_N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))
#define PH_STRINGIFY_(x) #x
#define PH_STRINGIFY(x) PH_STRINGIFY_(x)

struct ph_error {
	char msg[512];
};

/* Format into err (may be NULL). Always returns -1, so callers can write
 * "return ph_error_set(err, ...);". errno is preserved. */
int ph_error_set(struct ph_error *err, const char *fmt, ...) PH_PRINTF(2, 3);

/* Allocation: on exhaustion these log and abort(); they never return NULL.
 * Webhook senders retry after a dropped connection, so dying is safe. */
void *ph_xmalloc(size_t n) PH_MALLOC;
void *ph_xcalloc(size_t nmemb, size_t size) PH_MALLOC;
void *ph_xrealloc(void *p, size_t n) __attribute__((returns_nonnull));
char *ph_xstrdup(const char *s) PH_MALLOC PH_NONNULL(1);
char *ph_xstrndup(const char *s, size_t n) PH_MALLOC PH_NONNULL(1);
char *ph_xasprintf(const char *fmt, ...) PH_PRINTF(1, 2) PH_MALLOC;

/* free(*p) and set *p = NULL; p itself must not be NULL. */
#define ph_free(p) do { free(*(p)); *(p) = NULL; } while (0)

/* Overwrite n bytes in a way the compiler may not elide (for secrets). */
void ph_wipe(void *p, size_t n);

/* write(2) all len bytes, retrying short writes and EINTR.
 * Returns 0, or -1 with errno set. */
int ph_write_all(int fd, const void *data, size_t len);

/* Value of one hex digit (either case), or -1. */
int ph_hex_nibble(char c);

/* Lower-case hex of len bytes into out, which must hold 2*len+1 bytes. */
void ph_hex_encode(const uint8_t *in, size_t len, char *out);

/* Decode hex (either case) of exactly 2*out_len characters.
 * Returns 0, or -1 on a bad length or a non-hex character. */
int ph_hex_decode(const char *in, size_t in_len, uint8_t *out, size_t out_len);

/* Parse a decimal unsigned integer in [min, max] from s (entire string).
 * Returns 0 or -1 (junk, sign, overflow or out of range). */
int ph_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Parse a duration: a decimal count of seconds, or a count followed by one
 * unit, "s", "m", "h" or "d" ("30", "30s", "5m", "1h", "7d"). The result in
 * seconds must lie in [min, max]. Returns 0, or -1 on junk, a sign, a
 * fraction, overflow or a value out of range. */
int ph_parse_duration(const char *s, uint64_t min, uint64_t max,
		      uint64_t *seconds_r) PH_NONNULL(1, 4);

/* True if s is non-empty and every character is an ASCII letter, a digit
 * or one of the characters in punct. */
bool ph_str_of(const char *s, const char *punct) PH_NONNULL(1, 2);

/* True for the ASCII white space of C's isspace() in the "C" locale:
 * space, \t, \n, \v, \f, \r. Locale-independent, unlike isspace(). */
bool ph_is_space(char c);

/* The length (1 to 4) of the well-formed UTF-8 sequence at the start of
 * [p, p+len), or 0 when it is not one (RFC 3629): a stray continuation
 * byte, a truncated sequence, an overlong form, an encoded surrogate
 * (U+D800..U+DFFF) or a code point above U+10FFFF. len must be > 0. */
size_t ph_utf8_char_len(const uint8_t *p, size_t len) PH_NONNULL(1);

/* A NUL-terminated copy of the len bytes at s with every byte that is not
 * part of well-formed UTF-8 (as ph_utf8_char_len() judges) replaced by
 * U+FFFD, so that text of unknown encoding still makes valid JSON. NUL
 * bytes in s are kept. *out_len_r, if non-NULL, receives the length.
 * Caller frees. */
char *ph_utf8_lossy(const void *s, size_t len, size_t *out_len_r)
	PH_MALLOC;

/* ASCII case-insensitive equality. */
bool ph_strcaseeq(const char *a, const char *b);

/* Fill buf with len bytes from the kernel's random generator (getrandom(2),
 * which waits only until the generator is first seeded after boot). No
 * user-space generator to instantiate: a CGI process's ids and keys cost
 * one system call. Returns 0, or -1 with errno set. */
int ph_random(void *buf, size_t len);

/* Monotonic clock in microseconds, for measuring elapsed time. */
uint64_t ph_now_monotonic_us(void);

/* Read a whole file into a NUL-terminated buffer (the NUL is not counted in
 * *len_r). Refuses files larger than max_len. Caller frees *data_r. */
int ph_read_file(const char *path, size_t max_len, char **data_r,
		 size_t *len_r, struct ph_error *err);

struct stat;

/* As ph_read_file, and *st_r is fstat(2) of the descriptor the bytes were
 * read from: a check of the file's owner or mode then concerns exactly the
 * file read, whatever is renamed over the path meanwhile. On failure the
 * partly read buffer is wiped before it is freed (it may hold secrets). */
int ph_read_file_stat(const char *path, size_t max_len, char **data_r,
		      size_t *len_r, struct stat *st_r, struct ph_error *err);

#endif
