/*
 * mntwatch (TestExecNeverInPidNSWithHostMounts): scans /proc of its container without end and
 * appends to /w/bad every process of its pid namespace whose mount namespace is not its own.
 * It needs ptrace access to the others (CAP_SYS_PTRACE). /w/ready says it has begun.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	char self[128], link[128], path[64];
	ssize_t n = readlink("/proc/self/ns/mnt", self, sizeof(self) - 1);
	if (n < 0)
		return 1;
	self[n] = 0;
	close(open("/w/ready", O_WRONLY | O_CREAT, 0644));
	for (;;) {
		DIR *d = opendir("/proc");
		if (!d)
			return 1;
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] < '0' || e->d_name[0] > '9')
				continue;
			snprintf(path, sizeof(path), "/proc/%s/ns/mnt", e->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n < 0)
				continue; /* gone, or not ours to see */
			link[n] = 0;
			if (strcmp(link, self) != 0) {
				FILE *f = fopen("/w/bad", "a");
				if (f) {
					fprintf(f, "pid %s: %s (ours %s)\n", e->d_name, link, self);
					fclose(f);
				}
			}
		}
		closedir(d);
	}
}
