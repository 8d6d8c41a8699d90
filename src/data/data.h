/* data.h — the loaders behind ds_data_load and the helpers they share.
 * Every loader zeroes *out first and leaves it zeroed on failure; its errors
 * name the file (and line, column or sample) and the problem. */
#ifndef DS_DATA_H
#define DS_DATA_H

#include "internal.h"

/* Class indices are stored as floats: integers up to 2^24 are exact. */
#define DS_MAX_LABEL (1 << 24)
/* Largest array a loader accepts, in elements. */
#define DS_MAX_ELEMS ((size_t)1 << 31)
/* Sizes in a header are checked against the file before anything is
 * allocated for them. A compressed file cannot be checked byte for byte;
 * deflate expands at most 1032:1 (zlib's bound), so gzip (and a FITS file's
 * tile-compressed data, which may also use RICE or PLIO: the same bound with
 * DS_MIN_EXPANDED slack) may declare at most that many bytes per byte stored. */
#define DS_MAX_EXPANSION 1032
#define DS_MIN_EXPANDED ((uint64_t)64 << 20)

/* npy:X[,Y]. X [n,F] → samples [F]; [n,H,W] → [1,H,W]; [n,C,H,W] → [C,H,W].
 * uint8 values are kept as 0..255 (not rescaled). Without Y, y = 0, classes 0. */
int ds_npy_load(const char *xpath, const char *ypath, ds_dataset *out);
/* An NPY array as float32: *data malloc'd, dims[0..*ndim). */
int ds_npy_read(const char *path, float **data, int *ndim, int dims[DS_MAX_DIMS]);

/* A CSV table (src/data/csv.c): numeric features [F] and a label column.
 * label: NULL the last column; a header name; an index (0 the first, −1 the
 * last); "none" (all columns are features, y = 0, classes 0). header: auto
 * decides from lines 1 and 2 (and reads scikit-learn's first line).
 * skip: lines dropped first. labels_only: a one-column file, only y filled. */
enum { DS_CSV_HEADER_AUTO = 0, DS_CSV_HEADER_YES, DS_CSV_HEADER_NO };
typedef struct ds_csv_opts {
    const char *label;
    int header, skip, labels_only;
    const char *usecols; /* "a,b,c": only these columns (by header name) are features; NULL all */
    const char *categorical; /* "COL:a|b|c": column COL holds one of these texts, read as its index 0, 1, 2 */
} ds_csv_opts;
int ds_csv_load_opts(const char *path, const ds_csv_opts *o, ds_dataset *out);
/* ds_csv_load_opts with header=auto (yes for labels_only), no skip. */
int ds_csv_load(const char *path, const char *label, int labels_only, ds_dataset *out);

/* folder:DIR — DIR/<class>/<image>.png|jpg|jpeg, classes in sorted order. */
int ds_folder_load(const char *dir, ds_dataset *out);
/* One PNG/JPEG file as a single unlabelled sample. */
int ds_image_file_load(const char *path, ds_dataset *out);

/* fits:FILE|DIR[,labels=FILE][,channels=C] (NaN pixels → 0, ±Inf is an
 * error); channels 0: one per plane, or a 4-D array's own. */
int ds_fits_load(const char *path, const char *labels, int channels, ds_dataset *out);

/* Files under DIR/<class>/ that `accept` by name, sorted by class then name. */
typedef struct ds_file_list {
    int n;
    char **paths;
    int *label;
    int classes;
    char **class_names;
} ds_file_list;
int ds_class_files(const char *dir, int (*accept)(const char *name), const char *kinds,
                   ds_file_list *out);
void ds_file_list_free(ds_file_list *l);

/* files.c: what the loaders share (they never call spec.c). */
/* Case-insensitive "name ends with ext". */
int ds_has_ext(const char *name, const char *ext);
/* Whether DIR, or a sub-folder down to depth levels, holds a file (or
 * folder) whose name `accept`s; hidden names are skipped. */
int ds_dir_has(const char *dir, int (*accept)(const char *name), int depth);
/* The whole file (gunzipped if it is gzip), NUL-terminated; NULL with the
 * error set (cannot open, read error, over 2 GiB, a NUL byte). */
char *ds_text_read(const char *path);
/* The whole file if it is under max bytes, NUL-terminated, *len its size;
 * NULL, quietly, if it cannot be read (for optional files: sidecars). */
char *ds_file_read(const char *path, size_t max, size_t *len);
/* Labels must be class indices 0 ≤ y < 2^24; sets *classes = max + 1. */
int ds_labels_check(const char *path, const float *y, int n, int *classes);
/* x [n·Π sample] and y [n] (zeroed), or an out-of-memory error naming path. */
int ds_dataset_alloc(ds_dataset *d, int n, ds_shape sample, const char *path);
/* Free (and clear) d's feature names and fields only. */
void ds_dataset_free_fields(ds_dataset *d);
void ds_names_free(char **names, int n);

/* Labels file (.npy 1-D, or .csv with a header and one column) → y [*n],
 * classes and (string labels) class names (npy.c). */
int ds_labels_read(const char *path, ds_dataset *lab);

/* Stamps first..first+k-1 of cfg made in parallel into x [k, C, H, W] and
 * their labels into y [k] (and meta [k] unless NULL); sim_progress.c. */
int ds_sim_stamps(const ds_sim_cfg *cfg, long first, long k, float *x, float *y, ds_sim_meta *meta);

#endif
