#include "http_upgrade.h"
