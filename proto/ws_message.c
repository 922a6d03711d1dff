#include "ws_message.h"
