/* hostile_fetch.c: a compromised fetch helper, for it_agent_pull. Given to
 * `drover-agent run-step --fetch-exe`. As `drover-agent fetch ...` it runs
 * the real helper (the drover-agent it was built with), lets it download and
 * verify the blobs, then, still as the helper's unprivileged user and in its
 * working directory (the cache), flips one byte in the middle of the biggest
 * blob: what a helper taken over could do to a layer it has just written,
 * before the agent unpacks it. As anything else (unpack-layer) it is the
 * real drover-agent. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int flip_biggest(const char *dir)
{
	char best[512] = "", path[512];
	off_t size = 0;
	struct dirent *de;
	struct stat st;
	unsigned char b;
	DIR *d = opendir(dir);
	int fd, ok;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > size) {
			size = st.st_size;
			snprintf(best, sizeof(best), "%s", path);
		}
	}
	closedir(d);
	fd = best[0] ? open(best, O_RDWR) : -1;
	if (fd < 0)
		return -1;
	ok = pread(fd, &b, 1, size / 2) == 1;
	b ^= 0x01;
	ok = ok && pwrite(fd, &b, 1, size / 2) == 1;
	close(fd);
	fprintf(stderr, "hostile_fetch: flipped byte %lld of %s\n", (long long)(size / 2), best);
	return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
	int status = 0;
	pid_t pid;

	if (argc < 2 || strcmp(argv[1], "fetch") != 0) {
		execv(DROVER_AGENT_EXE, argv);
		return 127;
	}
	pid = fork();
	if (pid == 0) {
		execv(DROVER_AGENT_EXE, argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return 1;
	if (flip_biggest("blobs/sha256") != 0)
		return 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
