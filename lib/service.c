/* placeholder until implemented */
typedef int postern_service_placeholder;
