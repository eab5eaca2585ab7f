/* The dashboard's files (src/cli/dashboard.{html,css,js}), embedded so
 * the wisp binary serves them with no file beside it: each
 * NUL-terminated. */
	.section .rodata
	.global wisp_dashboard_html, wisp_dashboard_css, wisp_dashboard_js
	.hidden wisp_dashboard_html, wisp_dashboard_css, wisp_dashboard_js
	.type wisp_dashboard_html, @object
wisp_dashboard_html:
	.incbin "src/cli/dashboard.html"
	.byte 0
	.size wisp_dashboard_html, . - wisp_dashboard_html
	.type wisp_dashboard_css, @object
wisp_dashboard_css:
	.incbin "src/cli/dashboard.css"
	.byte 0
	.size wisp_dashboard_css, . - wisp_dashboard_css
	.type wisp_dashboard_js, @object
wisp_dashboard_js:
	.incbin "src/cli/dashboard.js"
	.byte 0
	.size wisp_dashboard_js, . - wisp_dashboard_js
	.section .note.GNU-stack,"",@progbits
