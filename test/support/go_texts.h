/* Go's error texts beside rill's (docs/go-model.md G30, G31).
 *
 * go_texts_pinned: every situation test_go_texts.c (callback API) and
 * test_facade_go_texts.c (facade) check, with the err.Error() Go 1.19 gives
 * for it, as test/go_texts/go_texts.go prints it: addresses that change from
 * run to run are placeholders ({listener}, {local}, {closed}, {closedport},
 * {dir}, {dns}, {deaddns}). A test formats rill's text for the situation and
 * compares it with the pinned text, placeholders filled in with its own
 * addresses. When the Go program was built (Go installed at configure
 * time), go_texts_run() runs it and the test checks that every pinned text
 * is still what Go prints.
 *
 * Plain C; include <stddef.h> first. */
#ifndef RILL_GO_TEXTS_H
#define RILL_GO_TEXTS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct go_text {
  const char *key;
  const char *text; /* Go's err.Error(), with placeholders */
} go_text;

extern const go_text go_texts_pinned[];
extern const size_t go_texts_pinned_count;

/* The pinned text for `key`; NULL if there is none. */
const char *go_texts_pinned_text(const char *key);

/* Copies `text` to `out` with every "{name}" replaced by the value after
 * "name" in `vars` (name, value, name, value, ..., NULL); unknown
 * placeholders stay as they are. */
void go_texts_expand(const char *text, const char *const *vars, char *out, size_t size);

/* Go's output: up to 64 lines. */
typedef struct go_output {
  size_t count;
  char keys[64][48];
  char texts[64][256];
} go_output;

/* Runs the Go program with `args` (NULL-terminated; no program name) and
 * collects its lines, killing it after `timeout_ms`. Returns 1 when it ran
 * and exited 0, 0 when the program was not built (no Go at configure
 * time), -1 when it failed (the reason on stderr). Call it before any
 * assertion: the child is always reaped when it returns. */
int go_texts_run(const char *const *args, go_output *out, int timeout_ms);

/* Go's line for `key`, or NULL. */
const char *go_output_text(const go_output *out, const char *key);

/* The keys a test compared with their pinned texts. */
typedef struct go_checked {
  size_t count;
  char keys[64][48];
} go_checked;

void go_checked_add(go_checked *checked, const char *key);

/* A Go-texts test's closing check: every pinned text was compared (when
 * `require_all`), and, when the Go program ran (`go` not NULL), Go still
 * prints each pinned text. 0, or -1 with the first failure in `why`. */
int go_texts_verify(const go_checked *checked, int require_all, const go_output *go, char *why,
                    size_t size);

#ifdef __cplusplus
}
#endif

#endif /* RILL_GO_TEXTS_H */
