/* ids.c - event ids (ULID) and RFC 3339 timestamps.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>


#include "ids.h"

#define ULID_TIME_CHARS 10
#define ULID_TIME_MAX ((UINT64_C(1) << 48) - 1)

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* Last id handed out by this process, for monotonicity. */
static pthread_mutex_t ulid_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t ulid_last_ms;
static uint8_t ulid_last_rand[PH_ULID_RAND_BYTES];
static bool ulid_have_last;

/* Add one to a big-endian number. Returns false if it wrapped to zero. */
static bool
rand_increment(uint8_t *r, size_t n)
{
	while (n-- > 0) {
		if (++r[n] != 0)
			return true;
	}
	return false;
}

void
ph_ulid_encode(uint64_t ms, const uint8_t rnd[PH_ULID_RAND_BYTES], char *out)
{
	for (int i = ULID_TIME_CHARS - 1; i >= 0; i--) {
		out[i] = crockford[ms & 0x1f];
		ms >>= 5;
	}
	/* 80 random bits are 16 characters: two groups of 5 bytes = 8 chars. */
	for (int g = 0; g < 2; g++) {
		uint64_t v = 0;

		for (int b = 0; b < 5; b++)
			v = v << 8 | rnd[5 * g + b];
		for (int c = 7; c >= 0; c--) {
			out[ULID_TIME_CHARS + 8 * g + c] = crockford[v & 0x1f];
			v >>= 5;
		}
	}
	out[PH_ULID_LEN] = '\0';
}

int
ph_ulid_generate(const struct timeval *now, char *out)
{
	uint8_t rnd[PH_ULID_RAND_BYTES];
	uint64_t ms;
	int ret = 0;

	if (now->tv_sec < 0)
		return -1;
	ms = (uint64_t)now->tv_sec * 1000 + (uint64_t)now->tv_usec / 1000;
	if (ms > ULID_TIME_MAX)
		return -1;

	pthread_mutex_lock(&ulid_lock);
	if (ulid_have_last && ms <= ulid_last_ms) {
		/* Same millisecond, or the clock stepped back: stay on the
		 * last time and count up from the last random part. The 80-bit
		 * space running out within one ms only happens to a broken
		 * RNG; then move to the next ms with fresh randomness. */
		ms = ulid_last_ms;
		memcpy(rnd, ulid_last_rand, sizeof(rnd));
		if (!rand_increment(rnd, sizeof(rnd))) {
			if (ms == ULID_TIME_MAX ||
			    ph_random(rnd, sizeof(rnd)) != 0) {
				ret = -1;
				goto out;
			}
			ms++;
		}
	} else if (ph_random(rnd, sizeof(rnd)) != 0) {
		ret = -1;
		goto out;
	}
	ulid_last_ms = ms;
	memcpy(ulid_last_rand, rnd, sizeof(rnd));
	ulid_have_last = true;
	ph_ulid_encode(ms, rnd, out);
out:
	pthread_mutex_unlock(&ulid_lock);
	return ret;
}

static int
crockford_value(char c)
{
	const char *p;

	if (c >= 'a' && c <= 'z')
		c = (char)(c - 'a' + 'A');
	if (c == '\0' || (p = strchr(crockford, c)) == NULL)
		return -1;
	return (int)(p - crockford);
}

int
ph_ulid_time_ms(const char *id, uint64_t *ms_r)
{
	uint64_t ms = 0;

	if (strnlen(id, PH_ULID_LEN + 1) != PH_ULID_LEN)
		return -1;
	for (size_t i = 0; i < PH_ULID_LEN; i++) {
		if (crockford_value(id[i]) < 0)
			return -1;
	}
	/* 26 characters carry 130 bits; a ULID is 128, so the first
	 * character is at most '7'. */
	if (crockford_value(id[0]) > 7)
		return -1;
	for (size_t i = 0; i < ULID_TIME_CHARS; i++)
		ms = ms << 5 | (uint64_t)crockford_value(id[i]);
	*ms_r = ms;
	return 0;
}

/* Broken-down UTC time of now, or the epoch if now is out of range or
 * its year has more than four digits. */
static void
utc_parts(const struct timeval *now, struct tm *tm, unsigned *ms)
{
	time_t t = now->tv_sec;

	*ms = now->tv_usec >= 0 && now->tv_usec < 1000000 ?
	    (unsigned)(now->tv_usec / 1000) : 0;
	if (gmtime_r(&t, tm) == NULL || tm->tm_year < -1900 ||
	    tm->tm_year > 9999 - 1900) {
		t = 0;
		gmtime_r(&t, tm);
		*ms = 0;
	}
}

/* Write v as exactly n decimal digits (v < 10^n) and return the end. */
static char *
put_digits(char *p, unsigned v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + n;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" or, compact, "YYYYMMDDTHHMMSS.mmmZ". */
static void
format_time(const struct timeval *now, bool compact, char *out)
{
	struct tm tm;
	unsigned ms;
	char *p = out;

	utc_parts(now, &tm, &ms);
	p = put_digits(p, (unsigned)(tm.tm_year + 1900), 4);
	if (!compact)
		*p++ = '-';
	p = put_digits(p, (unsigned)(tm.tm_mon + 1), 2);
	if (!compact)
		*p++ = '-';
	p = put_digits(p, (unsigned)tm.tm_mday, 2);
	*p++ = 'T';
	p = put_digits(p, (unsigned)tm.tm_hour, 2);
	if (!compact)
		*p++ = ':';
	p = put_digits(p, (unsigned)tm.tm_min, 2);
	if (!compact)
		*p++ = ':';
	p = put_digits(p, (unsigned)tm.tm_sec, 2);
	*p++ = '.';
	p = put_digits(p, ms, 3);
	*p++ = 'Z';
	*p = '\0';
}

void
ph_time_rfc3339(const struct timeval *now, char *out)
{
	format_time(now, false, out);
}

void
ph_time_stamp(const struct timeval *now, char *out)
{
	format_time(now, true, out);
}
