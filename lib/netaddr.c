/* placeholder until implemented */
typedef int postern_netaddr_placeholder;
