/* ini.h — the INI tokenizer under model files: sections of key=value lines,
 * each remembering its line number for error messages. */
#ifndef DS_INI_H
#define DS_INI_H

typedef struct ini_kv {
    char *key, *val;
    int line;
} ini_kv;

typedef struct ini_sec {
    char *name;
    int line;
    ini_kv *kv;
    int n_kv, cap_kv;
} ini_sec;

typedef struct ini {
    ini_sec *sec;
    int n_sec, cap_sec;
} ini;

/* Split text into sections. Comments run from '#' or ';' to the end of the
 * line; blank lines are skipped; keys and values are trimmed. Errors read
 * "FILE:LINE: problem" (file = the name used in messages). */
int ini_parse(const char *text, const char *file, ini *out);
void ini_free(ini *p);
/* The next comma-separated item of a value *p, trimmed (the string is
 * modified, *p advanced); NULL after the last. */
char *ini_next_item(char **p);

#endif
