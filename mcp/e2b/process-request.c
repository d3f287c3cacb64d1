/* The JSON of envd's process.Process requests turned into what warren runs: pure functions
 * of a cJSON message (the fuzz target drives them). Field names are accepted in both
 * proto3 JSON spellings (lowerCamelCase and the proto name), as Connect servers do. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "e2b-internal.h"

/* A field by its JSON name or its proto name (NULL for none). */
static const cJSON *field(const cJSON *o, const char *json_name, const char *proto_name)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, json_name);
    if (!x && proto_name)
        x = cJSON_GetObjectItemCaseSensitive(o, proto_name);
    return cJSON_IsNull(x) ? NULL : x;
}

static bool string_ok(const char *s, size_t max)
{
    return s && strnlen(s, max + 1) <= max;
}

void e2b_start_request_clear(struct e2b_start_request *r)
{
    wr_strv_free(r->argv);
    wr_strv_free(r->env);
    free(r->cwd);
    free(r->tag);
    cJSON_Delete(r->config);
    *r = (struct e2b_start_request){0};
}

static int parse_args(const cJSON *cmd, const cJSON *args, struct e2b_start_request *r,
                      const char **why)
{
    if (!cJSON_IsString(cmd) || !*cmd->valuestring || !string_ok(cmd->valuestring, 4096))
        return *why = "process.cmd must be a non-empty string of at most 4096 bytes", -EINVAL;
    if (args && !cJSON_IsArray(args))
        return *why = "process.args must be an array of strings", -EINVAL;
    size_t n = 0;
    wr_strv_push(&r->argv, &n, wr_strdup(cmd->valuestring));
    const cJSON *a;
    cJSON_ArrayForEach(a, args)
    {
        if (!cJSON_IsString(a))
            return *why = "process.args must be an array of strings", -EINVAL;
        if (n > E2B_PROCESS_ARGS_MAX)
            return *why = "process.args: at most 4096 arguments", -E2BIG;
        wr_strv_push(&r->argv, &n, wr_strdup(a->valuestring));
    }
    return 0;
}

static int parse_envs(const cJSON *envs, struct e2b_start_request *r, const char **why)
{
    if (envs && !cJSON_IsObject(envs))
        return *why = "process.envs must be an object of strings", -EINVAL;
    size_t n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, envs)
    {
        if (!cJSON_IsString(e))
            return *why = "process.envs must be an object of strings", -EINVAL;
        if (!*e->string || strchr(e->string, '='))
            return *why = "process.envs: a name is non-empty and holds no '='", -EINVAL;
        if (n >= E2B_PROCESS_ARGS_MAX)
            return *why = "process.envs: at most 4096 variables", -E2BIG;
        wr_strv_push(&r->env, &n, wr_asprintf("%s=%s", e->string, e->valuestring));
    }
    return 0;
}

static int parse_dim(const cJSON *size, const char *name, unsigned *ret, const char **why)
{
    const cJSON *v = field(size, name, NULL);
    if (!v) {
        *ret = 0;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > E2B_PTY_DIM_MAX ||
        v->valuedouble != floor(v->valuedouble))
        return *why = "pty.size: cols and rows are whole numbers from 1 to 1000", -EINVAL;
    *ret = (unsigned)v->valuedouble;
    return 0;
}

int e2b_pty_size_parse(const cJSON *pty, unsigned *ret_rows, unsigned *ret_cols, const char **why)
{
    if (!cJSON_IsObject(pty))
        return *why = "pty must be an object", -EINVAL;
    const cJSON *size = field(pty, "size", NULL);
    if (size && !cJSON_IsObject(size))
        return *why = "pty.size must be an object", -EINVAL;
    int r = parse_dim(size, "rows", ret_rows, why);
    if (r == 0)
        r = parse_dim(size, "cols", ret_cols, why);
    return r;
}

/* What List answers for the process: its request's config (cmd, args, envs, cwd). */
static cJSON *config_of(const cJSON *process)
{
    cJSON *c = cJSON_CreateObject();
    static const char *const keys[] = {"cmd", "args", "envs", "cwd"};
    for (size_t i = 0; i < WR_ARRAY_SIZE(keys); i++) {
        const cJSON *x = field(process, keys[i], NULL);
        if (x)
            cJSON_AddItemToObject(c, keys[i], cJSON_Duplicate(x, true));
    }
    if (!field(c, "args", NULL))
        cJSON_AddItemToObject(c, "args", cJSON_CreateArray());
    if (!field(c, "envs", NULL))
        cJSON_AddItemToObject(c, "envs", cJSON_CreateObject());
    return c;
}

static int parse_start(const cJSON *msg, struct e2b_start_request *r, const char **why)
{
    const cJSON *process = field(msg, "process", NULL);
    if (!cJSON_IsObject(process))
        return *why = "process must be an object with cmd", -EINVAL;
    int ret = parse_args(field(process, "cmd", NULL), field(process, "args", NULL), r, why);
    if (ret == 0)
        ret = parse_envs(field(process, "envs", NULL), r, why);
    if (ret < 0)
        return ret;
    const cJSON *cwd = field(process, "cwd", NULL);
    if (cwd && (!cJSON_IsString(cwd) || !string_ok(cwd->valuestring, 4096)))
        return *why = "process.cwd must be a path of at most 4096 bytes", -EINVAL;
    if (cwd && *cwd->valuestring)
        r->cwd = wr_strdup(cwd->valuestring);
    const cJSON *tag = field(msg, "tag", NULL);
    if (tag && (!cJSON_IsString(tag) || !string_ok(tag->valuestring, E2B_PROCESS_TAG_MAX)))
        return *why = "tag must be a string of at most 256 bytes", -EINVAL;
    if (tag && *tag->valuestring)
        r->tag = wr_strdup(tag->valuestring);
    const cJSON *pty = field(msg, "pty", NULL);
    if (pty) {
        r->pty = true;
        if ((ret = e2b_pty_size_parse(pty, &r->rows, &r->cols, why)) < 0)
            return ret;
        r->rows = r->rows ? r->rows : 24;
        r->cols = r->cols ? r->cols : 80;
    }
    /* envd: stdin is open unless the request says false (the SDK's commands do). */
    const cJSON *in = field(msg, "stdin", NULL);
    if (in && !cJSON_IsBool(in))
        return *why = "stdin must be a boolean", -EINVAL;
    r->stdin_open = !in || cJSON_IsTrue(in);
    r->config = config_of(process);
    return 0;
}

int e2b_start_request_parse(const cJSON *msg, struct e2b_start_request *ret, const char **why)
{
    *ret = (struct e2b_start_request){0};
    int r = parse_start(msg, ret, why);
    if (r < 0)
        e2b_start_request_clear(ret);
    return r;
}

int e2b_selector_parse(const cJSON *msg, struct e2b_selector *ret, const char **why)
{
    *ret = (struct e2b_selector){0};
    const cJSON *process = field(msg, "process", NULL);
    if (!cJSON_IsObject(process))
        return *why = "process must be a selector: {pid} or {tag}", -EINVAL;
    const cJSON *pid = field(process, "pid", NULL);
    const cJSON *tag = field(process, "tag", NULL);
    if (pid) {
        /* proto3 JSON: a uint32 may come as a number or a decimal string. */
        double v = cJSON_IsNumber(pid) ? pid->valuedouble : -1;
        if (cJSON_IsString(pid)) {
            char *end = NULL;
            v = strtod(pid->valuestring, &end);
            if (!*pid->valuestring || *end)
                v = -1;
        }
        if (!(v >= 1 && v <= UINT32_MAX && v == floor(v)))
            return *why = "process.pid must be a whole number from 1 to 4294967295", -EINVAL;
        ret->pid = (uint32_t)v;
        return 0;
    }
    if (tag) {
        if (!cJSON_IsString(tag) || !*tag->valuestring ||
            !string_ok(tag->valuestring, E2B_PROCESS_TAG_MAX))
            return *why = "process.tag must be a string of 1 to 256 bytes", -EINVAL;
        ret->tag = tag->valuestring;
        return 0;
    }
    return *why = "process must be a selector: {pid} or {tag}", -EINVAL;
}

int e2b_signal_parse(const cJSON *msg, int *ret, const char **why)
{
    const cJSON *s = field(msg, "signal", NULL);
    if (cJSON_IsString(s) && !strcmp(s->valuestring, "SIGNAL_SIGKILL"))
        return *ret = 9, 0;
    if (cJSON_IsString(s) && !strcmp(s->valuestring, "SIGNAL_SIGTERM"))
        return *ret = 15, 0;
    if (cJSON_IsNumber(s) && (s->valuedouble == 9 || s->valuedouble == 15))
        return *ret = (int)s->valuedouble, 0;
    return *why = "signal must be SIGNAL_SIGKILL (9) or SIGNAL_SIGTERM (15)", -EINVAL;
}

int e2b_input_parse(const cJSON *msg, struct e2b_input *ret, const char **why)
{
    *ret = (struct e2b_input){0};
    const cJSON *input = field(msg, "input", NULL);
    const cJSON *data = NULL;
    if (cJSON_IsObject(input)) {
        data = field(input, "stdin", NULL);
        ret->pty = !data;
        if (!data)
            data = field(input, "pty", NULL);
    }
    if (!cJSON_IsString(data))
        return *why = "input must be {stdin: base64} or {pty: base64}", -EINVAL;
    size_t n = strlen(data->valuestring);
    if (n > wr_base64_encoded_len(E2B_INPUT_MAX))
        return *why = "input is larger than 64 KiB: send it in parts", -EMSGSIZE;
    ret->data = wr_malloc(n / 4 * 3 + 4);
    ssize_t len = wr_base64_decode(data->valuestring, n, ret->data);
    if (len < 0) {
        free(TAKE_PTR(ret->data));
        return *why = "input is not base64", -EINVAL;
    }
    if ((size_t)len > E2B_INPUT_MAX) {
        free(TAKE_PTR(ret->data));
        return *why = "input is larger than 64 KiB: send it in parts", -EMSGSIZE;
    }
    ret->len = (size_t)len;
    return 0;
}
