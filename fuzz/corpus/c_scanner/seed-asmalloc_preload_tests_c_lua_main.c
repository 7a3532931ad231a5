/* A minimal stand-alone Lua interpreter over the `lua-src` crate's library
 * (which ships no lua.c): runs each file named on the command line in one
 * state, then closes it (which frees everything). */
#include <stdio.h>
#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

int main(int argc, char **argv)
{
	lua_State *L = luaL_newstate();
	if (L == NULL)
		return 2;
	luaL_openlibs(L);
	int rc = 0;
	for (int i = 1; i < argc && rc == 0; i++) {
		if (luaL_dofile(L, argv[i]) != LUA_OK) {
			fprintf(stderr, "%s\n", lua_tostring(L, -1));
			rc = 1;
		}
	}
	lua_close(L);
	return rc;
}
