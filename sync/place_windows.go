package sync

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode/utf16"
	"unsafe"

	"golang.org/x/sys/windows"
)

// dirFd is an open folder handle. Everything below it is opened relative
// to the handle (NtCreateFile with RootDirectory, one component at a time)
// and with FILE_OPEN_REPARSE_POINT, which opens a symbolic link or junction
// itself rather than its target; a folder that turns out to be a link is
// refused. So a link planted inside inbox/ can never redirect a write
// outside it, as the *at walk does on Unix.
type dirFd windows.Handle

const (
	// dirAccess is what walking and listing a folder needs.
	dirAccess = windows.FILE_LIST_DIRECTORY | windows.FILE_TRAVERSE | windows.FILE_READ_ATTRIBUTES | windows.SYNCHRONIZE
	// shareAll lets others open, write and rename what we hold open, as
	// Unix does.
	shareAll = windows.FILE_SHARE_READ | windows.FILE_SHARE_WRITE | windows.FILE_SHARE_DELETE
)

// openDir opens path as a folder. Links in path itself are followed: it
// is the configured inbox or partials folder, not something a peer named.
func openDir(path string) (dirFd, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	h, err := windows.CreateFile(p, dirAccess, shareAll, nil, windows.OPEN_EXISTING, windows.FILE_FLAG_BACKUP_SEMANTICS, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	return dirFd(h), nil
}

func (d dirFd) close() { windows.CloseHandle(windows.Handle(d)) }

// openAt opens the single component name relative to d, never following
// a link in it. Names with a separator or a stream (":") are refused:
// NtCreateFile would walk or open them instead of one plain entry.
func (d dirFd) openAt(name string, access, disposition, options uint32) (windows.Handle, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `\/:`) {
		return 0, fmt.Errorf("%q is not one plain name: %w", name, ErrInvalidName)
	}
	uname, err := windows.NewNTUnicodeString(name)
	if err != nil {
		return 0, err
	}
	oa := windows.OBJECT_ATTRIBUTES{RootDirectory: windows.Handle(d), ObjectName: uname, Attributes: windows.OBJ_CASE_INSENSITIVE}
	oa.Length = uint32(unsafe.Sizeof(oa))
	var h windows.Handle
	var iosb windows.IO_STATUS_BLOCK
	options |= windows.FILE_OPEN_REPARSE_POINT | windows.FILE_SYNCHRONOUS_IO_NONALERT
	err = windows.NtCreateFile(&h, access|windows.SYNCHRONIZE, &oa, &iosb, nil, 0, shareAll, disposition, options, 0, 0)
	if err != nil {
		return 0, err
	}
	return h, nil
}

// foldNames lists the folder's entries by foldKey, with whether each is a
// real folder (not a link).
func (d dirFd) foldNames() (map[string]string, map[string]bool, error) {
	h, err := d.reopen()
	if err != nil {
		return nil, nil, err
	}
	f := os.NewFile(uintptr(h), "dir")
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, nil, err
	}
	names, isDir := foldEntries(ents)
	return names, isDir, nil
}

// reopen opens d's folder once more (NtCreateFile relative to d with an
// empty name): a listing needs a handle of its own, since a duplicated
// handle would share d's listing position.
func (d dirFd) reopen() (windows.Handle, error) {
	oa := windows.OBJECT_ATTRIBUTES{RootDirectory: windows.Handle(d), ObjectName: &windows.NTUnicodeString{}}
	oa.Length = uint32(unsafe.Sizeof(oa))
	var h windows.Handle
	var iosb windows.IO_STATUS_BLOCK
	options := uint32(windows.FILE_DIRECTORY_FILE | windows.FILE_SYNCHRONOUS_IO_NONALERT)
	if err := windows.NtCreateFile(&h, dirAccess, &oa, &iosb, nil, 0, shareAll, windows.FILE_OPEN, options, 0, 0); err != nil {
		return 0, fmt.Errorf("reopen folder: %w", err)
	}
	return h, nil
}

// subdir opens (creating if needed) the child folder comp. A folder whose
// name clashes when case-folded is reused; a file in the way gets the
// folder a numbered name. It returns the name used.
func (d dirFd) subdir(comp string) (dirFd, string, error) {
	names, isDir, err := d.foldNames()
	if err != nil {
		return 0, "", err
	}
	name, create := folderName(names, isDir, comp)
	if create {
		if err := d.mkdir(name); err != nil {
			return 0, "", err
		}
	}
	return d.openSubdir(name)
}

// mkdir creates the folder name in d; one that exists already is fine.
func (d dirFd) mkdir(name string) error {
	h, err := d.openAt(name, dirAccess, windows.FILE_CREATE, windows.FILE_DIRECTORY_FILE)
	if errors.Is(err, windows.STATUS_OBJECT_NAME_COLLISION) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mkdir %s: %w", name, err)
	}
	windows.CloseHandle(h)
	return nil
}

// openSubdir opens the existing folder name in d, refusing a link.
func (d dirFd) openSubdir(name string) (dirFd, string, error) {
	h, err := d.openAt(name, dirAccess, windows.FILE_OPEN, windows.FILE_DIRECTORY_FILE)
	if err != nil {
		return 0, "", fmt.Errorf("open folder %s: %w", name, err)
	}
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		windows.CloseHandle(h)
		return 0, "", fmt.Errorf("open folder %s: %w", name, err)
	}
	if info.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0 {
		windows.CloseHandle(h)
		return 0, "", fmt.Errorf("open folder %s: is a link", name)
	}
	return dirFd(h), name, nil
}

// renameUnique moves from/fromName into d under base or "base (n).ext",
// never replacing anything: candidates clashing case-folded with an
// existing entry are skipped, and a rename that may not replace settles
// races.
func (d dirFd) renameUnique(from dirFd, fromName, base string) (string, error) {
	names, _, err := d.foldNames()
	if err != nil {
		return "", err
	}
	src, err := from.openAt(fromName, windows.DELETE|windows.FILE_READ_ATTRIBUTES, windows.FILE_OPEN, windows.FILE_NON_DIRECTORY_FILE)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", fromName, err)
	}
	defer windows.CloseHandle(src)
	return placeUnique(names, base, func(name string) error {
		err := renameHandle(src, d, name, false)
		if errors.Is(err, windows.STATUS_OBJECT_NAME_COLLISION) {
			return errNameTaken
		}
		return err
	})
}

// fileRenameInformation is FILE_RENAME_INFORMATION; FileName runs on past
// the struct.
type fileRenameInformation struct {
	ReplaceIfExists uint32 // a BOOLEAN padded to the handle's alignment
	RootDirectory   windows.Handle
	FileNameLength  uint32 // bytes
	FileName        [1]uint16
}

// renameHandle renames the open file h to name in the folder dir. Without
// replace it fails with STATUS_OBJECT_NAME_COLLISION when name exists:
// renameat with RENAME_NOREPLACE; with replace it renames over name in
// one step, as renameat does.
func renameHandle(h windows.Handle, dir dirFd, name string, replace bool) error {
	if strings.ContainsAny(name, `\/:`) {
		return fmt.Errorf("%q is not one plain name: %w", name, ErrInvalidName)
	}
	u := utf16.Encode([]rune(name))
	var info fileRenameInformation
	size := int(unsafe.Offsetof(info.FileName)) + 2*len(u)
	buf := make([]byte, max(size, int(unsafe.Sizeof(info))))
	p := (*fileRenameInformation)(unsafe.Pointer(&buf[0]))
	if replace {
		p.ReplaceIfExists = 1
	}
	p.RootDirectory = windows.Handle(dir)
	p.FileNameLength = uint32(2 * len(u))
	copy(unsafe.Slice(&p.FileName[0], len(u)), u)
	var iosb windows.IO_STATUS_BLOCK
	return windows.NtSetInformationFile(h, &iosb, &buf[0], uint32(size), windows.FileRenameInformation)
}

// statName returns the identity of the entry name in d, not following a
// link (openAt opens the link itself), and whether it is a regular file.
func (d dirFd) statName(name string) (fileID, bool, error) {
	h, err := d.openAt(name, windows.FILE_READ_ATTRIBUTES, windows.FILE_OPEN, 0)
	if err != nil {
		return fileID{}, false, err
	}
	defer windows.CloseHandle(h)
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		return fileID{}, false, err
	}
	id := fileID{
		Ino:   uint64(info.FileIndexHigh)<<32 | uint64(info.FileIndexLow),
		Size:  uint64(info.FileSizeHigh)<<32 | uint64(info.FileSizeLow),
		MTime: info.LastWriteTime.Nanoseconds(),
	}
	special := windows.FILE_ATTRIBUTE_DIRECTORY | windows.FILE_ATTRIBUTE_REPARSE_POINT
	return id, info.FileAttributes&uint32(special) == 0, nil
}

// renameOver moves from/fromName into d as name, replacing what is there
// in one step. It fails while a program has name open (Windows does not
// replace an open file), and the caller then places a numbered copy.
func (d dirFd) renameOver(from dirFd, fromName, name string) error {
	src, err := from.openAt(fromName, windows.DELETE|windows.FILE_READ_ATTRIBUTES, windows.FILE_OPEN, windows.FILE_NON_DIRECTORY_FILE)
	if err != nil {
		return fmt.Errorf("open %s: %w", fromName, err)
	}
	defer windows.CloseHandle(src)
	return renameHandle(src, d, name, true)
}

// sync does nothing: a folder handle cannot be flushed without write
// access to the folder, and NTFS journals the rename itself.
func (d dirFd) sync() error { return nil }
