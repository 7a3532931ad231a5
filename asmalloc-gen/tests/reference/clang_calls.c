/*
 * The reference for asmalloc-gen's accuracy test (tests/accuracy.rs): what
 * clang's front end (libclang) finds in a C tree, printed one fact a line.
 *
 *   clang_calls ROOT NAMES [CLANG-ARGS...] -- FILE...
 *
 * NAMES is a comma-separated list of function names. For each FILE, parsed
 * as a translation unit with CLANG-ARGS, and for every file under ROOT it
 * includes:
 *
 *   C <file> <line> <column> <name>
 *        a call expression whose callee is the function NAME (a declared
 *        function, not a pointer or member), at the callee's name, or,
 *        for a call a macro expands to, at the macro's use (its expansion
 *        location: what __LINE__ says there; libclang 14 gives no
 *        spelling location inside a #define body);
 *   M <file> <line>   the definition of a macro that was expanded;
 *   S <file> <first line> <last line>   a range skipped by #if;
 *   I <file>          a file of the tree that was compiled (main or included).
 *
 * Paths are absolute (realpath). Nothing is printed for system headers.
 */
#include <clang-c/Index.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *root;
static size_t root_len;
static char **names;
static int num_names;

static int in_tree(const char *path)
{
	return path && strncmp(path, root, root_len) == 0 &&
	       (path[root_len] == '/' || path[root_len] == 0);
}

/* The real path of a location's file (static buffer), or NULL. */
static const char *file_of(CXFile f, char *buf)
{
	if (!f)
		return NULL;
	CXString s = clang_getFileName(f);
	const char *c = clang_getCString(s);
	const char *out = NULL;
	if (c && realpath(c, buf))
		out = buf;
	clang_disposeString(s);
	return out;
}

static int wanted(const char *name)
{
	for (int i = 0; i < num_names; i++)
		if (strcmp(names[i], name) == 0)
			return 1;
	return 0;
}

struct find_ref {
	CXCursor decl;
	CXCursor found;
	int ok;
};

static enum CXChildVisitResult find_ref_visit(CXCursor c, CXCursor parent, CXClientData data)
{
	(void)parent;
	struct find_ref *f = data;
	if (clang_getCursorKind(c) == CXCursor_DeclRefExpr &&
	    clang_equalCursors(clang_getCanonicalCursor(clang_getCursorReferenced(c)), f->decl)) {
		f->found = c;
		f->ok = 1;
		return CXChildVisit_Break;
	}
	/* Only the callee expression: stop at the first argument. */
	return CXChildVisit_Recurse;
}

static void print_call(CXCursor call, CXCursor decl, const char *name)
{
	struct find_ref f = { decl, clang_getNullCursor(), 0 };
	/* The callee is the first child; arguments follow. */
	clang_visitChildren(call, find_ref_visit, &f);
	if (!f.ok)
		return;
	CXSourceLocation loc = clang_getCursorLocation(f.found);
	CXFile ef;
	unsigned el, ec;
	clang_getExpansionLocation(loc, &ef, &el, &ec, NULL);
	char eb[PATH_MAX];
	const char *ep = file_of(ef, eb);
	if (in_tree(ep))
		printf("C %s %u %u %s\n", ep, el, ec, name);
}

static enum CXChildVisitResult visit(CXCursor c, CXCursor parent, CXClientData data)
{
	(void)data;
	CXSourceLocation loc = clang_getCursorLocation(c);
	if (clang_getCursorKind(parent) == CXCursor_TranslationUnit &&
	    clang_Location_isInSystemHeader(loc))
		return CXChildVisit_Continue;
	enum CXCursorKind kind = clang_getCursorKind(c);
	if (kind == CXCursor_MacroExpansion) {
		CXCursor def = clang_getCursorReferenced(c);
		if (!clang_Cursor_isNull(def)) {
			CXFile f;
			unsigned line;
			clang_getSpellingLocation(clang_getCursorLocation(def), &f, &line, NULL, NULL);
			char b[PATH_MAX];
			const char *p = file_of(f, b);
			if (in_tree(p))
				printf("M %s %u\n", p, line);
		}
		return CXChildVisit_Continue;
	}
	if (kind == CXCursor_CallExpr) {
		CXCursor decl = clang_getCursorReferenced(c);
		if (clang_getCursorKind(decl) == CXCursor_FunctionDecl) {
			CXString n = clang_getCursorSpelling(decl);
			const char *name = clang_getCString(n);
			if (name && wanted(name))
				print_call(c, clang_getCanonicalCursor(decl), name);
			clang_disposeString(n);
		}
	}
	return CXChildVisit_Recurse;
}

static void inclusion(CXFile f, CXSourceLocation *stack, unsigned len, CXClientData data)
{
	(void)stack;
	(void)len;
	(void)data;
	char b[PATH_MAX];
	const char *p = file_of(f, b);
	if (in_tree(p))
		printf("I %s\n", p);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: clang_calls ROOT NAMES [CLANG-ARGS...] -- FILE...\n");
		return 2;
	}
	static char rootbuf[PATH_MAX];
	if (!realpath(argv[1], rootbuf)) {
		perror(argv[1]);
		return 2;
	}
	root = rootbuf;
	root_len = strlen(root);
	char *list = strdup(argv[2]);
	names = calloc(strlen(list) + 1, sizeof *names);
	for (char *t = strtok(list, ","); t; t = strtok(NULL, ","))
		names[num_names++] = t;
	int sep = 3;
	while (sep < argc && strcmp(argv[sep], "--") != 0)
		sep++;
	if (sep >= argc) {
		fprintf(stderr, "clang_calls: no -- before the files\n");
		return 2;
	}
	const char *const *cargs = (const char *const *)argv + 3;
	int ncargs = sep - 3;
	CXIndex index = clang_createIndex(0, 0);
	int failed = 0;
	for (int i = sep + 1; i < argc; i++) {
		CXTranslationUnit tu = clang_parseTranslationUnit(index, argv[i], cargs, ncargs, NULL, 0,
				CXTranslationUnit_DetailedPreprocessingRecord | CXTranslationUnit_KeepGoing);
		if (!tu) {
			fprintf(stderr, "clang_calls: cannot parse %s\n", argv[i]);
			failed = 1;
			continue;
		}
		clang_visitChildren(clang_getTranslationUnitCursor(tu), visit, NULL);
		clang_getInclusions(tu, inclusion, NULL);
		CXSourceRangeList *skipped = clang_getAllSkippedRanges(tu);
		for (unsigned k = 0; skipped && k < skipped->count; k++) {
			CXFile f;
			unsigned a, b;
			clang_getSpellingLocation(clang_getRangeStart(skipped->ranges[k]), &f, &a, NULL, NULL);
			clang_getSpellingLocation(clang_getRangeEnd(skipped->ranges[k]), NULL, &b, NULL, NULL);
			char buf[PATH_MAX];
			const char *p = file_of(f, buf);
			if (in_tree(p))
				printf("S %s %u %u\n", p, a, b);
		}
		clang_disposeSourceRangeList(skipped);
		clang_disposeTranslationUnit(tu);
	}
	clang_disposeIndex(index);
	return failed;
}
