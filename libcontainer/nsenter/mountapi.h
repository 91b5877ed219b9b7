/*
 * The new mount API (fsopen, fsconfig, fsmount, open_tree, move_mount, mount_setattr) where
 * the C library has no wrappers for it: glibc 2.36 has them in <sys/mount.h>; musl, which
 * berth links when musl-gcc is there (it starts faster: Makefile), has not. Same names and
 * constants as glibc's, as plain system calls.
 */
#ifndef BERTH_MOUNTAPI_H
#define BERTH_MOUNTAPI_H

#include <sys/mount.h>

#ifndef __GLIBC__
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FSOPEN_CLOEXEC 0x00000001
#define FSMOUNT_CLOEXEC 0x00000001
#define FSCONFIG_SET_STRING 1
#define FSCONFIG_CMD_CREATE 6
#define OPEN_TREE_CLONE 1
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV 0x00000004
#define MOUNT_ATTR_NOEXEC 0x00000008

struct mount_attr {
	uint64_t attr_set;
	uint64_t attr_clr;
	uint64_t propagation;
	uint64_t userns_fd;
};

static inline int fsopen(const char *fs, unsigned int flags)
{
	return (int)syscall(SYS_fsopen, fs, flags);
}

static inline int fsconfig(int fd, unsigned int cmd, const char *key, const void *value, int aux)
{
	return (int)syscall(SYS_fsconfig, fd, cmd, key, value, aux);
}

static inline int fsmount(int fd, unsigned int flags, unsigned int attrs)
{
	return (int)syscall(SYS_fsmount, fd, flags, attrs);
}

static inline int open_tree(int dirfd, const char *path, unsigned int flags)
{
	return (int)syscall(SYS_open_tree, dirfd, path, flags);
}

static inline int move_mount(int from_dirfd, const char *from_path, int to_dirfd, const char *to_path,
			     unsigned int flags)
{
	return (int)syscall(SYS_move_mount, from_dirfd, from_path, to_dirfd, to_path, flags);
}

static inline int mount_setattr(int dirfd, const char *path, unsigned int flags, struct mount_attr *attr,
				size_t size)
{
	return (int)syscall(SYS_mount_setattr, dirfd, path, flags, attr, size);
}
#endif

#endif
