/* placeholder until implemented */
typedef int postern_resolve_placeholder;
