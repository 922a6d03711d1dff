/* Access control by topic patterns (protocol-v1 section 8): auth.tokens
 * entries with subscribe/publish lists (%u substituted), the JWT "ferrymq"
 * claim (%u and %c from "client_id"), auth.jwt.default_subscribe and
 * default_publish, forbidden errors that keep the request's id and cause no
 * MQTT action, and topic= on the upgrade URL (403). */

#include "bridge_client.h"
#include "broker_proc.h"
#include "config_fixture.h"
#include "gateway_proc.h"
#include "jwt_maker.h"
#include "proc.h"
#include "wsclient.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define T 5000
#define QUIET_MS 300
#define SECRET "acl-test-secret-41f0"

static char dir[256];

static struct fmqt_config_fixture tokens = {
    .yaml = "auth:\n"
            "  mode: token\n"
            "  tokens:\n"
            "    - token: alice-token\n"
            "      user: alice\n"
            "      subscribe: [\"devices/%u/#\"]\n"
            "      publish: [\"devices/%u/commands\"]\n"
            "    - token: root-token\n"
            "      user: root\n"
            "    - token: mute-token\n"
            "      user: mute\n"
            "      subscribe: []\n"
            "      publish: []\n"};
static struct fmqt_config_fixture jwt = {
    .yaml = "auth:\n"
            "  mode: jwt\n"
            "  jwt:\n"
            "    algorithms: [HS256]\n"
            "    secret: \"" SECRET "\"\n"};
static struct fmqt_config_fixture jwt_defaults = {
    .yaml = "auth:\n"
            "  mode: jwt\n"
            "  jwt:\n"
            "    algorithms: [HS256]\n"
            "    secret: \"" SECRET "\"\n"
            "    default_subscribe: [\"public/#\", \"users/%u/#\"]\n"
            "    default_publish: [\"public/in\"]\n"};

static int setup_group(void **state) {
  (void)state;
  fmqt_make_temp_dir(dir, sizeof dir, "acl");
  return 0;
}

static int teardown_group(void **state) {
  (void)state;
  fmqt_remove_temp_dir(dir);
  return 0;
}

/* --- helpers --- */

static const char *gw_id(void **state) {
  return fmqt_fixture_of(state)->client_id;
}

/* An HS256 token for sub with more claims (JSON members after a ',', or
 * ""), valid for an hour (malloc'd). */
static char *make_jwt(const char *sub, const char *more) {
  char claims[1024];
  int n = snprintf(claims, sizeof claims, "{\"sub\":\"%s\",\"exp\":%ld%s}", sub,
                   (long)time(NULL) + 3600, more);
  assert_true(n > 0 && (size_t)n < sizeof claims);
  return fmqt_jwt(dir, "HS256", NULL, claims, SECRET);
}

/* Connects with token (sent as a Bearer header) and query ("" or
 * "topic=..."). */
static int connect_as(void **state, const char *token, const char *query) {
  char path[512], header[2048];
  snprintf(path, sizeof path, "/mqtt%s%s", *query ? "?" : "", query);
  snprintf(header, sizeof header, "Authorization: Bearer %s\r\n", token);
  return fmqt_ws_connect(fmqt_fixture_port(state), path, header);
}

static int connect_jwt(void **state, const char *sub, const char *more) {
  char *token = make_jwt(sub, more);
  int fd = connect_as(state, token, "");
  free(token);
  return fd;
}

/* The upgrade status for token (Bearer) and path; closes the connection. */
static int upgrade_status(void **state, const char *path, const char *token) {
  char req[4096], key[25], head[4096], header[2048];
  snprintf(header, sizeof header, "Authorization: Bearer %s\r\n", token);
  size_t n = fmqt_ws_request(req, sizeof req, path, header, key);
  int fd = fmqt_tcp_connect(fmqt_fixture_port(state));
  fmqt_send_all(fd, req, n);
  int status = fmqt_http_read_head(fd, head, sizeof head, T);
  fmqt_close(fd);
  return status;
}

/* Asserts path with token is refused with 403 (never upgraded). */
static void assert_forbidden_upgrade(void **state, const char *path, const char *token) {
  char req[4096], key[25], head[4096], header[2048];
  snprintf(header, sizeof header, "Authorization: Bearer %s\r\n", token);
  size_t n = fmqt_ws_request(req, sizeof req, path, header, key);
  int status = fmqt_http_refused(fmqt_fixture_port(state), req, n, head, sizeof head);
  if (status != 403) {
    fail_msg("%s: status %d, want 403\n%s", path, status, head);
  }
}

/* Expects the puback for id and the client's own message on topic, in
 * either order. */
static void expect_puback_and_message(int fd, const char *id, const char *topic,
                                      const char *text) {
  int puback = 0, message = 0;
  for (int i = 0; i < 2; i++) {
    json_t *v = fmqt_expect(fd, T, "a puback and the client's own message");
    if (fmqt_is_message(v, topic)) {
      fmqt_assert_message(v, topic, text, strlen(text), 0, 0);
      message++;
    } else {
      assert_string_equal(fmqt_json_str(v, "type"), "puback");
      fmqt_assert_id(v, id, "puback");
      puback++;
    }
    json_decref(v);
  }
  assert_int_equal(puback, 1);
  assert_int_equal(message, 1);
}

static void expect_forbidden_subscribe(int fd, const char *filter, const char *id) {
  fmqt_send_subscribe(fd, filter, 1, id);
  fmqt_expect_error(fd, "forbidden", id, T, filter);
}

static void expect_forbidden_publish(int fd, const char *topic, const char *id) {
  fmqt_publish_text(fd, topic, "must not arrive", 1, 0, id);
  fmqt_expect_error(fd, "forbidden", id, T, topic);
}

static void observe(struct fmqt_sub *s, void **state, const char *filter) {
  fmqt_sub_start(s, fmqt_fixture_broker(state), (const char *const[]){filter, NULL}, 1,
                 "mqttv5");
}

/* --- auth.tokens --- */

static void subscriptions_must_be_covered_by_a_pattern(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int fd = connect_as(state, "alice-token", "");
  fmqt_subscribe(fd, "devices/alice/+/temp", 0, "s1", 0);
  fmqt_subscribe(fd, "devices/alice", 0, "s2", 0);
  static const char *const refused[] = {
      "devices/+/temp", "devices/#", "#", "+/alice/#", "devices/bob/#", "devices/alicex/#",
      "devices/+",
  };
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    char id[16];
    snprintf(id, sizeof id, "f%zu", i);
    expect_forbidden_subscribe(fd, refused[i], id);
  }
  /* No SUBSCRIBE for a refused filter reached the broker. */
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    assert_int_equal(fmqt_broker_subscribes_since(b, 0, gw_id(state), refused[i], -1), 0);
  }
  /* Published first: it would arrive first through devices/+/temp. */
  fmqt_mqtt_pub_text(b, "devices/bob/temp", "bob's", 0, 0);
  fmqt_mqtt_pub_text(b, "devices/alice/kitchen/temp", "alice's", 0, 0);
  fmqt_mqtt_pub_text(b, "devices/alice", "exact", 0, 0);
  fmqt_expect_message(fd, "devices/alice/kitchen/temp", "alice's", 0, 0, T);
  fmqt_expect_message(fd, "devices/alice", "exact", 0, 0, T);
  fmqt_expect_nothing(fd, QUIET_MS, "after the allowed messages");
  fmqt_ws_close_cleanly(fd, 1000);
}

static void publishing_must_be_covered_by_a_pattern(void **state) {
  struct fmqt_sub obs;
  observe(&obs, state, "#");
  int fd = connect_as(state, "alice-token", "");
  expect_forbidden_publish(fd, "devices/bob/commands", "p1");
  expect_forbidden_publish(fd, "devices/alice/other", "p2");
  expect_forbidden_publish(fd, "devices/alice/commands/x", "p3");
  expect_forbidden_publish(fd, "devices/alice", "p4");
  fmqt_send_binary_publish(fd, "devices/bob/commands", "binary, refused", 15);
  fmqt_expect_error(fd, "forbidden", NULL, T, "a binary publish to devices/bob/commands");
  fmqt_publish_text(fd, "devices/alice/commands", "allowed", 1, 0, "ok");
  fmqt_expect_puback(fd, "ok", T);
  fmqt_send_binary_publish(fd, "devices/alice/commands", "binary, allowed", 15);
  fmqt_ws_assert_json_ping(fd, "after-binary", T);
  static const struct fmqt_sub_want want[] = {{"devices/alice/commands", "allowed", 1, 0},
                                              {"devices/alice/commands", "binary, allowed", 0, 0}};
  fmqt_sub_expect_only(&obs, want, 2, T, QUIET_MS);
  fmqt_sub_stop(&obs);
  fmqt_ws_close_cleanly(fd, 1000);
}

static void topic_query_must_be_readable(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  assert_forbidden_upgrade(state, "/mqtt?topic=devices%2Fbob%2F%23", "alice-token");
  assert_forbidden_upgrade(state, "/mqtt?topic=devices%2Falice%2F%23&topic=%23", "alice-token");
  assert_forbidden_upgrade(state, "/mqtt?topic=devices%2F%2B%2Ftemp", "alice-token");
  assert_forbidden_upgrade(state, "/mqtt?topic=x", "mute-token");
  assert_int_equal(fmqt_broker_log_count_since(b, 0, "Received SUBSCRIBE from"), 0);

  int fd = connect_as(state, "alice-token", "topic=devices%2Falice%2F%2B%2Ftemp");
  json_t *v = fmqt_expect(fd, T, "subscribed for topic=");
  if (strcmp(fmqt_json_str(v, "type") ? fmqt_json_str(v, "type") : "", "subscribed") != 0 ||
      strcmp(fmqt_json_str(v, "topic") ? fmqt_json_str(v, "topic") : "", "devices/alice/+/temp")) {
    fail_msg("want subscribed for devices/alice/+/temp, got %s", fmqt_dump(v));
  }
  json_decref(v);
  fmqt_mqtt_pub_text(b, "devices/alice/hall/temp", "21", 0, 0);
  fmqt_expect_message(fd, "devices/alice/hall/temp", "21", 0, 0, T);
  fmqt_ws_close_cleanly(fd, 1000);
}

static void an_entry_without_lists_allows_everything(void **state) {
  struct fmqt_sub obs;
  observe(&obs, state, "#");
  int fd = connect_as(state, "root-token", "topic=%23");
  fmqt_expect_subscribed(fd, "#", 0, NULL, T);
  fmqt_subscribe(fd, "devices/+/temp", 1, "s", 1);
  fmqt_publish_text(fd, "any/where/at/all", "root", 1, 0, "p");
  expect_puback_and_message(fd, "p", "any/where/at/all", "root");
  static const struct fmqt_sub_want want[] = {{"any/where/at/all", "root", 1, 0}};
  fmqt_sub_expect_only(&obs, want, 1, T, QUIET_MS);
  fmqt_sub_stop(&obs);
  fmqt_ws_close_cleanly(fd, 1000);
}

static void empty_lists_allow_nothing(void **state) {
  struct fmqt_sub obs;
  observe(&obs, state, "#");
  int fd = connect_as(state, "mute-token", "");
  expect_forbidden_subscribe(fd, "x", "s1");
  expect_forbidden_subscribe(fd, "#", "s2");
  expect_forbidden_publish(fd, "x", "p1");
  fmqt_sub_expect_only(&obs, NULL, 0, T, QUIET_MS);
  fmqt_sub_stop(&obs);
  fmqt_ws_close_cleanly(fd, 1000);
}

/* --- JWT --- */

static void the_ferrymq_claim_decides_with_user_and_client_id(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  struct fmqt_sub obs;
  observe(&obs, state, "#");
  static const char more[] =
      ",\"client_id\":\"dev-42\",\"ferrymq\":{"
      "\"subscribe\":[\"rooms/%u/#\",\"clients/%c/#\"],"
      "\"publish\":[\"rooms/%u/out\",\"clients/%c/up\"]}";
  int fd = connect_jwt(state, "dave", more);
  fmqt_subscribe(fd, "rooms/dave/#", 0, "s1", 0);
  fmqt_subscribe(fd, "clients/dev-42/+", 0, "s2", 0);
  expect_forbidden_subscribe(fd, "rooms/eve/#", "f1");
  expect_forbidden_subscribe(fd, "clients/dev-43/#", "f2");
  expect_forbidden_subscribe(fd, "clients/+/x", "f3");
  expect_forbidden_subscribe(fd, "rooms/%u/#", "f4");
  expect_forbidden_publish(fd, "rooms/dave/in", "p1");
  expect_forbidden_publish(fd, "clients/dev-43/up", "p2");
  expect_forbidden_publish(fd, "rooms/eve/out", "p3");
  fmqt_publish_text(fd, "rooms/dave/out", "hello", 1, 0, "ok1");
  expect_puback_and_message(fd, "ok1", "rooms/dave/out", "hello");
  fmqt_publish_text(fd, "clients/dev-42/up", "up", 1, 0, "ok2");
  expect_puback_and_message(fd, "ok2", "clients/dev-42/up", "up");
  static const struct fmqt_sub_want want[] = {{"rooms/dave/out", "hello", 1, 0},
                                              {"clients/dev-42/up", "up", 1, 0}};
  fmqt_sub_expect_only(&obs, want, 2, T, QUIET_MS);
  fmqt_mqtt_pub_text(b, "rooms/eve/x", "eve's", 0, 0);
  fmqt_mqtt_pub_text(b, "clients/dev-42/status", "mine", 0, 0);
  fmqt_expect_message(fd, "clients/dev-42/status", "mine", 0, 0, T);
  fmqt_expect_nothing(fd, QUIET_MS, "after the allowed messages");
  fmqt_ws_close_cleanly(fd, 1000);

  /* The same claim decides topic= at the upgrade, %c included. */
  char *token = make_jwt("dave", more);
  assert_forbidden_upgrade(state, "/mqtt?topic=clients%2Fdev-43%2Fstatus", token);
  fd = connect_as(state, token, "topic=clients%2Fdev-42%2Fstatus");
  fmqt_expect_subscribed(fd, "clients/dev-42/status", 0, NULL, T);
  fmqt_ws_close_cleanly(fd, 1000);
  free(token);
  fmqt_sub_stop(&obs);
}

static void a_claim_lacking_a_list_allows_nothing_there(void **state) {
  struct fmqt_sub obs;
  observe(&obs, state, "#");
  int fd = connect_jwt(state, "erin", ",\"ferrymq\":{\"subscribe\":[\"x/#\"]}");
  fmqt_subscribe(fd, "x/a", 0, "s1", 0);
  expect_forbidden_publish(fd, "x/a", "p1");
  fmqt_ws_close_cleanly(fd, 1000);

  fd = connect_jwt(state, "erin", ",\"ferrymq\":{\"publish\":[\"x/a\"]}");
  expect_forbidden_subscribe(fd, "x/a", "s2");
  fmqt_publish_text(fd, "x/a", "allowed", 1, 0, "p2");
  fmqt_expect_puback(fd, "p2", T);
  static const struct fmqt_sub_want want[] = {{"x/a", "allowed", 1, 0}};
  fmqt_sub_expect_only(&obs, want, 1, T, QUIET_MS);
  fmqt_ws_close_cleanly(fd, 1000);
  fmqt_sub_stop(&obs);
}

static void without_the_claim_nothing_is_allowed_by_default(void **state) {
  struct fmqt_sub obs;
  observe(&obs, state, "#");
  int fd = connect_jwt(state, "frank", "");
  expect_forbidden_subscribe(fd, "a", "s1");
  expect_forbidden_subscribe(fd, "users/frank/#", "s2");
  expect_forbidden_publish(fd, "a", "p1");
  fmqt_sub_expect_only(&obs, NULL, 0, T, QUIET_MS);
  fmqt_ws_close_cleanly(fd, 1000);
  char *token = make_jwt("frank", "");
  assert_forbidden_upgrade(state, "/mqtt?topic=a", token);
  free(token);
  fmqt_sub_stop(&obs);
}

static void without_the_claim_the_defaults_apply(void **state) {
  struct fmqt_sub obs;
  observe(&obs, state, "#");
  int fd = connect_jwt(state, "carol", "");
  fmqt_subscribe(fd, "public/x", 0, "s1", 0);
  fmqt_subscribe(fd, "users/carol/#", 0, "s2", 0);
  expect_forbidden_subscribe(fd, "users/dave/#", "f1");
  expect_forbidden_subscribe(fd, "#", "f2");
  fmqt_publish_text(fd, "public/in", "default publish", 1, 0, "p1");
  fmqt_expect_puback(fd, "p1", T);
  expect_forbidden_publish(fd, "public/out", "p2");
  fmqt_ws_close_cleanly(fd, 1000);

  /* A token with the claim gets the claim, not the defaults. */
  fd = connect_jwt(state, "carol", ",\"ferrymq\":{\"subscribe\":[\"own/#\"]}");
  fmqt_subscribe(fd, "own/x", 0, "s3", 0);
  expect_forbidden_subscribe(fd, "public/x", "f3");
  expect_forbidden_subscribe(fd, "users/carol/#", "f4");
  expect_forbidden_publish(fd, "public/in", "p3");
  static const struct fmqt_sub_want want[] = {{"public/in", "default publish", 1, 0}};
  fmqt_sub_expect_only(&obs, want, 1, T, QUIET_MS);
  fmqt_ws_close_cleanly(fd, 1000);
  fmqt_sub_stop(&obs);
}

/* A user or client id holding '/', '+' or '#' must not widen a pattern:
 * such a token is refused (401) or its patterns grant nothing. */
static void wildcards_in_identities_grant_nothing(void **state) {
  static const struct {
    const char *sub, *more, *filter;
  } cases[] = {
      {"+", ",\"ferrymq\":{\"subscribe\":[\"users/%u/#\"]}", "users/+/#"},
      {"a/b", ",\"ferrymq\":{\"subscribe\":[\"users/%u\"]}", "users/a/b"},
      {"ok", ",\"client_id\":\"#\",\"ferrymq\":{\"subscribe\":[\"clients/%c\"]}", "clients/#"},
      {"ok", ",\"client_id\":\"x/+\",\"ferrymq\":{\"subscribe\":[\"clients/%c\"]}",
       "clients/x/+"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *token = make_jwt(cases[i].sub, cases[i].more);
    int status = upgrade_status(state, "/mqtt", token);
    if (status == 101) {
      int fd = connect_as(state, token, "");
      expect_forbidden_subscribe(fd, cases[i].filter, "w");
      fmqt_ws_close_cleanly(fd, 1000);
    } else if (status != 401) {
      fail_msg("sub %s with %s: status %d, want 101 (and forbidden) or 401", cases[i].sub,
               cases[i].more, status);
    }
    free(token);
  }
}

#define TEST(fn, fixture) \
  cmocka_unit_test_prestate_setup_teardown(fn, fmqt_config_fixture_setup, \
                                           fmqt_config_fixture_teardown, &fixture)

int main(void) {
  const struct CMUnitTest tests[] = {
      TEST(subscriptions_must_be_covered_by_a_pattern, tokens),
      TEST(publishing_must_be_covered_by_a_pattern, tokens),
      TEST(topic_query_must_be_readable, tokens),
      TEST(an_entry_without_lists_allows_everything, tokens),
      TEST(empty_lists_allow_nothing, tokens),
      TEST(the_ferrymq_claim_decides_with_user_and_client_id, jwt),
      TEST(a_claim_lacking_a_list_allows_nothing_there, jwt),
      TEST(without_the_claim_nothing_is_allowed_by_default, jwt),
      TEST(wildcards_in_identities_grant_nothing, jwt),
      TEST(without_the_claim_the_defaults_apply, jwt_defaults),
  };
  return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
