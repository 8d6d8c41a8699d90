/* param_groups.h — which group each parameter of a graph is in (param_groups.c,
 * used by optim.c). */
#ifndef DS_PARAM_GROUPS_H
#define DS_PARAM_GROUPS_H

#include "internal.h"

/* For every entry i of g->params: group[i] = k for the first of groups[0..n)
 * whose patterns select it, n (the default group) if none does, −1 for a
 * buffer; no_wd[i] = 1 where `no_decay` switches weight decay off. Fails on
 * a bad or empty pattern list, a pattern that selects nothing and a
 * parameter two groups select, naming them. */
int ds_param_groups_assign(const ds_graph *g, const ds_param_group *groups, int n, unsigned no_decay,
                           int *group, unsigned char *no_wd);

/* The group's name for messages: groups[k].name, else "ds_param_group[k]". */
const char *ds_param_group_label(const ds_param_group *groups, int k, char *buf, size_t size);

#endif
