#include "config_internal.h"

#include "topic.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum {
  MAPPING_TYPE,
  MAPPING_ACTION,
  MAPPING_TOPIC,
  MAPPING_QOS,
  MAPPING_RETAIN,
  MAPPING_DELIVER_TYPE,
  MAPPING_PAYLOAD,
  MAPPING_UNDOES
};
static const char *const mapping_keys[] = {"type",   "action",       "topic",   "qos",
                                           "retain", "deliver_type", "payload", "undoes"};
static const char *const mapping_action_names[] = {"subscribe", "unsubscribe", "publish", NULL};

#define ACTION_BIT(a) (1u << FMQ_MAPPING_##a)
#define ALL_ACTIONS (ACTION_BIT(SUBSCRIBE) | ACTION_BIT(UNSUBSCRIBE) | ACTION_BIT(PUBLISH))

/* The actions each of mapping_keys applies to. */
static const unsigned mapping_key_actions[] = {
    ALL_ACTIONS,         ALL_ACTIONS,
    ALL_ACTIONS,         ACTION_BIT(SUBSCRIBE) | ACTION_BIT(PUBLISH),
    ACTION_BIT(PUBLISH), ACTION_BIT(SUBSCRIBE),
    ACTION_BIT(PUBLISH), ACTION_BIT(UNSUBSCRIBE),
};

_Static_assert(ARRAY_SIZE(mapping_keys) <= ENTRY_KEYS_MAX, "struct entry is too small");
_Static_assert(ARRAY_SIZE(mapping_key_actions) == ARRAY_SIZE(mapping_keys),
               "an action set for each mapping key");

/* Types the client protocol itself gives meaning to, one way or the other. */
static const char *const client_types[] = {"subscribe", "unsubscribe", "publish", "ping"};
static const char *const gateway_types[] = {"subscribed", "unsubscribed", "puback",
                                            "error",      "status",       "pong"};

/* Where each mapping's type and undoes were, for messages about other
 * entries and for undoes, resolved after the whole list. */
struct mapping_marks {
  yaml_mark_t type, undoes;
};

static bool is_one_of(const char *s, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(s, list[i]) == 0)
      return true;
  return false;
}

static void mappings_free(struct fmq_mapping_config *m, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(m[i].type);
    fmq_template_close(&m[i].topic);
    free(m[i].deliver_type);
    free(m[i].undoes);
    free(m[i].payload_field);
  }
  free(m);
}

static int mapping_set(struct loader *ld, struct entry *e, size_t key, const yaml_event_t *v,
                       void *item) {
  const char *s = fmq_config_entry_scalar(ld, e, key, v);

  (void)item;
  if (s == NULL)
    return -1;
  if ((e->text[key] = strdup(s)) == NULL)
    return fmq_config_load_fail(ld, &v->start_mark, "out of memory");
  return 0;
}

/* The topic template must give a valid filter (subscribe, unsubscribe) or
 * topic name (publish) whatever the fields hold. */
static int mapping_topic(struct fmq_mapping_config *m, const char *text, char *msg, size_t msglen) {
  char why[FMQ_CONFIG_ERR_MAX], *topic;
  size_t len;
  int rc = 0;

  if (fmq_template_parse(&m->topic, text, why, sizeof why) != 0)
    return fmq_config_fail(msg, msglen, "invalid template '%s': %s", text, why);
  if (fmq_template_fill(&m->topic, NULL, &topic, why, sizeof why) != 0)
    return fmq_config_fail(msg, msglen, "out of memory");
  len = strlen(topic);
  if (m->action == FMQ_MAPPING_PUBLISH) {
    if (fmq_topic_check_name(topic, len) != 0)
      rc = fmq_config_fail(
          msg, msglen, "'%s' is not a valid topic name (no '+' or '#' in a publish topic)", text);
  } else if (fmq_topic_check_filter(topic, len) != 0) {
    rc = fmq_config_fail(
        msg, msglen,
        "'%s' is not a valid topic filter ('+' fills a whole level, '#' only the last one)", text);
  } else if (fmq_topic_is_shared(topic, len)) {
    rc = fmq_config_fail(msg, msglen, "'%s' is a shared subscription, which a mapping cannot make",
                         text);
  }
  free(topic);
  return rc;
}

/* payload: exactly "{field}". */
static int mapping_payload(struct fmq_mapping_config *m, const char *text, char *msg,
                           size_t msglen) {
  struct fmq_template t;
  char why[FMQ_CONFIG_ERR_MAX];
  int rc;

  if (fmq_template_parse(&t, text, why, sizeof why) != 0)
    return fmq_config_fail(msg, msglen, "invalid template '%s': %s", text, why);
  if (t.nparts == 1 && t.parts[0].field)
    rc = fmq_config_set_string(&m->payload_field, t.parts[0].text, msg, msglen);
  else
    rc = fmq_config_fail(
        msg, msglen,
        "'%s' is not a single field (use e.g. \"{command}\", or no payload for the whole "
        "message)",
        text);
  fmq_template_close(&t);
  return rc;
}

static int mapping_value(struct fmq_mapping_config *maps, size_t i,
                         const struct mapping_marks *marks, size_t key, const char *text, char *msg,
                         size_t msglen) {
  struct fmq_mapping_config *m = &maps[i];

  switch (key) {
  case MAPPING_TYPE:
    if (text[0] == '\0')
      return fmq_config_fail(msg, msglen, "must not be empty");
    if (is_one_of(text, client_types, ARRAY_SIZE(client_types)))
      return fmq_config_fail(msg, msglen, "'%s' is a message type of the protocol itself", text);
    for (size_t j = 0; j < i; j++)
      if (strcmp(maps[j].type, text) == 0)
        return fmq_config_fail(msg, msglen, "type '%s' is already mapped on line %lu", text,
                               (unsigned long)marks[j].type.line + 1);
    return fmq_config_set_string(&m->type, text, msg, msglen);
  case MAPPING_ACTION:
    for (int a = 0; mapping_action_names[a] != NULL; a++) {
      if (strcmp(text, mapping_action_names[a]) == 0) {
        m->action = (enum fmq_mapping_action)a;
        return 0;
      }
    }
    return fmq_config_fail(msg, msglen,
                           "invalid value '%s' (use subscribe | unsubscribe | publish)", text);
  case MAPPING_TOPIC:
    return mapping_topic(m, text, msg, msglen);
  case MAPPING_QOS:
    if (text[0] < '0' || text[0] > '2' || text[1] != '\0')
      return fmq_config_fail(msg, msglen, "invalid value '%s' (use 0, 1 or 2)", text);
    m->qos = text[0] - '0';
    return 0;
  case MAPPING_RETAIN:
    if (fmq_config_parse_bool(text, &m->retain) != 0)
      return fmq_config_fail(msg, msglen, "invalid value '%s' (use true or false)", text);
    return 0;
  case MAPPING_DELIVER_TYPE:
    if (text[0] == '\0')
      return fmq_config_fail(msg, msglen, "must not be empty");
    if (is_one_of(text, gateway_types, ARRAY_SIZE(gateway_types)))
      return fmq_config_fail(msg, msglen, "'%s' is a message type of the gateway", text);
    return fmq_config_set_string(&m->deliver_type, text, msg, msglen);
  case MAPPING_PAYLOAD:
    return mapping_payload(m, text, msg, msglen);
  default: /* MAPPING_UNDOES, resolved after the whole list */
    return fmq_config_set_string(&m->undoes, text, msg, msglen);
  }
}

/* "only for action publish", "only for actions subscribe and publish". */
static int only_for(struct loader *ld, const struct entry *e, size_t key) {
  char list[64] = "";
  unsigned actions = mapping_key_actions[key];
  int n = 0;

  for (int a = 0; mapping_action_names[a] != NULL; a++)
    if (actions & (1u << a))
      snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", n++ > 0 ? " and " : "",
               mapping_action_names[a]);
  return fmq_config_load_fail(ld, &e->key[key], "%s.%s: only for action%s %s", e->where,
                              mapping_keys[key], n > 1 ? "s" : "", list);
}

static int mapping_finish(struct loader *ld, const struct entry *e, void *items, size_t i,
                          void *arg) {
  struct mapping_marks **marks = arg, *grown;
  struct fmq_mapping_config *maps = items, *m = &maps[i];
  char msg[FMQ_CONFIG_ERR_MAX];

  if ((grown = realloc(*marks, (i + 1) * sizeof **marks)) == NULL)
    return fmq_config_load_fail(ld, &e->start, "out of memory");
  *marks = grown;
  grown[i].type = e->value[MAPPING_TYPE];
  grown[i].undoes = e->value[MAPPING_UNDOES];
  if (!(e->present & KEY_BIT(MAPPING_ACTION)))
    return fmq_config_load_fail(ld, &e->start, "%s: entry has no 'action'", e->where);
  /* In key order: type, then action, which the other keys depend on. */
  for (size_t k = 0; k < ARRAY_SIZE(mapping_keys); k++) {
    if (!(e->present & KEY_BIT(k)))
      continue;
    if (!(mapping_key_actions[k] & (1u << m->action)))
      return only_for(ld, e, k);
    if (mapping_value(maps, i, grown, k, e->text[k], msg, sizeof msg) != 0)
      return fmq_config_load_fail(ld, &e->value[k], "%s.%s: %s", e->where, mapping_keys[k], msg);
  }
  if (m->action != FMQ_MAPPING_UNSUBSCRIBE && !(e->present & KEY_BIT(MAPPING_TOPIC)))
    return fmq_config_load_fail(ld, &e->start, "%s: entry has no 'topic' (required for action %s)",
                                e->where, mapping_action_names[m->action]);
  if (m->action == FMQ_MAPPING_UNSUBSCRIBE && (e->present & KEY_BIT(MAPPING_TOPIC)) &&
      (e->present & KEY_BIT(MAPPING_UNDOES)))
    return fmq_config_load_fail(ld, &e->key[MAPPING_UNDOES],
                                "%s.undoes: give 'topic' or 'undoes', not both", e->where);
  if (m->action == FMQ_MAPPING_UNSUBSCRIBE &&
      !(e->present & (KEY_BIT(MAPPING_TOPIC) | KEY_BIT(MAPPING_UNDOES))))
    return fmq_config_load_fail(ld, &e->start, "%s: an unsubscribe needs 'topic' or 'undoes'",
                                e->where);
  return 0;
}

static const struct list_kind mappings_kind = {
    .name = "mappings",
    .what = "entries",
    .keys = mapping_keys,
    .nkeys = ARRAY_SIZE(mapping_keys),
    .size = sizeof(struct fmq_mapping_config),
    .set = mapping_set,
    .finish = mapping_finish,
};

static int resolve_undoes(struct loader *ld, struct fmq_mapping_config *maps, size_t n,
                          const struct mapping_marks *marks) {
  for (size_t i = 0; i < n; i++) {
    size_t j;
    if (maps[i].undoes == NULL)
      continue;
    for (j = 0; j < n && strcmp(maps[j].type, maps[i].undoes) != 0; j++)
      ;
    if (j == n)
      return fmq_config_load_fail(ld, &marks[i].undoes,
                                  "mappings[%zu].undoes: no mapping has type '%s'", i,
                                  maps[i].undoes);
    if (maps[j].action != FMQ_MAPPING_SUBSCRIBE)
      return fmq_config_load_fail(
          ld, &marks[i].undoes, "mappings[%zu].undoes: '%s' (line %lu) is not a subscribe mapping",
          i, maps[i].undoes, (unsigned long)marks[j].type.line + 1);
    maps[i].undoes_index = j;
  }
  return 0;
}

int fmq_config_load_mappings(struct loader *ld, const struct fmq_option *o, yaml_event_t *ev) {
  struct mapping_marks *marks = NULL;
  void *items = NULL;
  size_t n = 0;
  int rc = fmq_config_load_items(ld, &mappings_kind, ev, &items, &n, &marks);

  (void)o;
  if (rc == 0)
    rc = resolve_undoes(ld, items, n, marks);
  free(marks);
  if (rc != 0) {
    mappings_free(items, n);
    return -1;
  }
  mappings_free(ld->c->mappings, ld->c->nmappings);
  ld->c->mappings = items;
  ld->c->nmappings = n;
  return 0;
}

void fmq_config_release_mappings(struct fmq_config *c) {
  mappings_free(c->mappings, c->nmappings);
  c->mappings = NULL;
  c->nmappings = 0;
}
