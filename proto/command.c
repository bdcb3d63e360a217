/* Log entry envelope; see command.h. */
#include "command.h"

#include <string.h>

#include "codec.h"
#include "lib/buf.h"
#include "lib/err.h"

size_t command_size(const Flipcmd__Command *cmd)
{
    size_t n = COMMAND_HEADER + flipcmd__command__get_packed_size(cmd);
    return (n + 7) & ~(size_t)7;
}

void command_write(const Flipcmd__Command *cmd, uint8_t *out)
{
    size_t total = command_size(cmd);
    size_t packed = flipcmd__command__pack(cmd, out + COMMAND_HEADER);

    buf_put_u32be(out, (uint32_t)packed);
    buf_put_u32be(out + 4, COMMAND_FORMAT);
    memset(out + COMMAND_HEADER + packed, 0, total - COMMAND_HEADER - packed);
}

int command_decode(const uint8_t *buf, size_t len, Flipcmd__Command **out)
{
    uint32_t packed;
    int short_of_memory = 0;
    ProtobufCAllocator a = codec_allocator_noting(&short_of_memory);

    *out = NULL;
    if (len < COMMAND_HEADER || len % 8 != 0) {
        return FLIP_CORRUPT;
    }
    packed = buf_get_u32be(buf);
    if (buf_get_u32be(buf + 4) != COMMAND_FORMAT ||
        packed > len - COMMAND_HEADER || len - COMMAND_HEADER - packed >= 8) {
        return FLIP_CORRUPT;
    }
    for (size_t i = COMMAND_HEADER + packed; i < len; i++) {
        if (buf[i] != 0) {
            return FLIP_CORRUPT;
        }
    }
    *out = flipcmd__command__unpack(&a, packed, buf + COMMAND_HEADER);
    if (*out == NULL) {
        return short_of_memory ? FLIP_NOMEM : FLIP_CORRUPT;
    }
    return FLIP_OK;
}

void command_free(Flipcmd__Command *cmd)
{
    if (cmd != NULL) {
        flipcmd__command__free_unpacked(cmd, &codec_allocator);
    }
}

void command_value_copy(const Flip__Value *v, Flip__Value *out)
{
    flip__value__init(out);
    out->kind_case = v->kind_case;
    switch (v->kind_case) {
    case FLIP__VALUE__KIND_BOOL_VALUE:
        out->bool_value = v->bool_value;
        break;
    case FLIP__VALUE__KIND_INT_VALUE:
        out->int_value = v->int_value;
        break;
    case FLIP__VALUE__KIND_DOUBLE_VALUE:
        out->double_value = v->double_value;
        break;
    case FLIP__VALUE__KIND_STRING_VALUE:
        out->string_value = v->string_value;
        break;
    case FLIP__VALUE__KIND_JSON_VALUE:
        out->json_value = v->json_value;
        break;
    default:
        break;
    }
}
