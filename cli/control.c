/* placeholder until implemented */
#include "commands.h"
