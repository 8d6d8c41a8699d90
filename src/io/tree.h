/* tree.h — the [tree] section of a model file into a ds_class_tree
 * (src/io/tree.c), for the model parser. */
#ifndef DS_TREE_H
#define DS_TREE_H

#include "ini.h"
#include "internal.h"

/* Check s (a [tree] section) against `classes` and build the tree: 0, or −1
 * with "FILE:LINE: [tree] node: problem". */
int ds_tree_from_ini(const ini_sec *s, int classes, const char *file, ds_class_tree **out);

#endif
